// The one way the studio includes QCustomPlot. qcustomplot.h (2.1) is written with Qt's `signals` and `foreach`
// keywords, which QT_NO_KEYWORDS (set for every UI library) removes; they are mapped to their Q_ forms for the
// length of this include only, so our own code still cannot use them.
#pragma once

#if defined(QT_NO_KEYWORDS) && !defined(signals)
#define signals Q_SIGNALS
#define foreach Q_FOREACH
#define QPRUNER_QCP_KEYWORDS_MAPPED
#endif

#include <qcustomplot.h>

#ifdef QPRUNER_QCP_KEYWORDS_MAPPED
#undef signals
#undef foreach
#undef QPRUNER_QCP_KEYWORDS_MAPPED
#endif
