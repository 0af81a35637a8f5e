# Stub of the compiled component tree (_component_tree.c; read by wsol_utils.scoring.boxeval).
from _typeshed import ReadableBuffer

def level_contour_boxes(image: ReadableBuffer, height: int, width: int, levels: ReadableBuffer, /) -> bytes: ...
