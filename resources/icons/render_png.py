#!/usr/bin/env python3
"""Renders qpruner-studio.svg to the PNG sizes listed in studio.qrc.

The PNGs are committed because Qt's SVG plug-in (qt6-svg) is optional and often not installed; this uses the
system librsvg and cairo through ctypes so it needs no Python packages. Run it after editing the SVG.
"""
import ctypes
import ctypes.util
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SIZES = (16, 32, 64, 128, 256)


class Rect(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double),
                ("width", ctypes.c_double), ("height", ctypes.c_double)]


def main() -> int:
    rsvg = ctypes.CDLL(ctypes.util.find_library("rsvg-2") or "librsvg-2.so.2")
    cairo = ctypes.CDLL(ctypes.util.find_library("cairo") or "libcairo.so.2")
    rsvg.rsvg_handle_new_from_file.restype = ctypes.c_void_p
    rsvg.rsvg_handle_new_from_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    rsvg.rsvg_handle_render_document.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(Rect),
                                                 ctypes.c_void_p]
    cairo.cairo_image_surface_create.restype = ctypes.c_void_p
    cairo.cairo_create.restype = ctypes.c_void_p
    cairo.cairo_create.argtypes = [ctypes.c_void_p]
    cairo.cairo_surface_write_to_png.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    cairo.cairo_destroy.argtypes = [ctypes.c_void_p]
    cairo.cairo_surface_destroy.argtypes = [ctypes.c_void_p]

    svg = HERE / "qpruner-studio.svg"
    handle = rsvg.rsvg_handle_new_from_file(str(svg).encode(), None)
    if not handle:
        print(f"cannot read {svg}", file=sys.stderr)
        return 1
    for size in SIZES:
        surface = cairo.cairo_image_surface_create(0, size, size)  # CAIRO_FORMAT_ARGB32
        cr = cairo.cairo_create(surface)
        if not rsvg.rsvg_handle_render_document(handle, cr, ctypes.byref(Rect(0, 0, size, size)), None):
            print(f"cannot render {svg} at {size}px", file=sys.stderr)
            return 1
        out = HERE / f"qpruner-studio-{size}.png"
        cairo.cairo_surface_write_to_png(surface, str(out).encode())
        cairo.cairo_destroy(cr)
        cairo.cairo_surface_destroy(surface)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
