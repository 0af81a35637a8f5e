/* The boxes of every contour that cv2.findContours(img >= v, RETR_TREE) returns, for many levels v at once,
 * without tracing a contour (docs/methods.md §2.2, "the component tree"; wsol_utils/scoring/boxeval.py reads it).
 *
 * OpenCV traces, for 8-connected foreground (the outside of the image is background):
 *   - one outer contour per 8-connected component of img >= v; its points are the component's border pixels, so
 *     its bounding rectangle is the component's;
 *   - one hole contour per 4-connected component of img < v that does not touch the image border; its points are
 *     the foreground pixels 4-adjacent to the hole, so its bounding rectangle is the hole's grown by one pixel.
 * Both families are nested over levels, so two union-find forests give every level's components in one pass each:
 * foreground pixels added in descending value (8-neighbours), background pixels in ascending value (4-neighbours),
 * each root keeping its bounding rectangle (and, for the background, whether it touches the border).
 *
 * level_contour_boxes(image, height, width, levels) -> bytes: int32 records (level_index, x0, y0, x1, y1), outer
 * contours then holes, the box clipped as wsoleval clips boundingRect: [x, y, min(x + w, W - 1), min(y + h, H - 1)].
 * image: (H, W) uint8, C-contiguous; levels: int32 in [0, 255], strictly ascending (a level above the image's
 * maximum has no record). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    int32_t *parent, *x0, *y0, *x1, *y1, *roots;
    uint8_t *touches;
    Py_ssize_t num_roots;
} Forest;

enum { RECORD = 5 }; /* int32 per record: level_index, x0, y0, x1, y1 */

typedef struct {
    int32_t *data;
    Py_ssize_t size, capacity; /* in records of RECORD int32 */
} Records;

static int32_t find_root(int32_t *parent, int32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]]; /* path halving */
        i = parent[i];
    }
    return i;
}

static void add_pixel(Forest *f, int32_t p, int32_t x, int32_t y, int32_t height, int32_t width) {
    f->parent[p] = p;
    f->x0[p] = f->x1[p] = x;
    f->y0[p] = f->y1[p] = y;
    f->touches[p] = (uint8_t)(x == 0 || y == 0 || x == width - 1 || y == height - 1);
    f->roots[f->num_roots++] = p;
}

static void unite(Forest *f, int32_t p, int32_t q) {
    int32_t a = find_root(f->parent, p), b = find_root(f->parent, q);
    if (a == b) return;
    if (b < a) {
        int32_t t = a;
        a = b;
        b = t;
    }
    f->parent[b] = a;
    if (f->x0[b] < f->x0[a]) f->x0[a] = f->x0[b];
    if (f->y0[b] < f->y0[a]) f->y0[a] = f->y0[b];
    if (f->x1[b] > f->x1[a]) f->x1[a] = f->x1[b];
    if (f->y1[b] > f->y1[a]) f->y1[a] = f->y1[b];
    f->touches[a] |= f->touches[b];
}

/* Append one record per live root (holes: only roots that do not touch the border, their boxes grown by one pixel)
 * and drop merged roots from the list. Returns 0, or -1 when memory runs out. */
static int emit(Forest *f, Records *out, int32_t hole, int32_t level_index, int32_t height, int32_t width) {
    Py_ssize_t live = 0;
    for (Py_ssize_t k = 0; k < f->num_roots; k++) {
        int32_t r = f->roots[k];
        if (f->parent[r] != r) continue;
        f->roots[live++] = r;
        if (hole && f->touches[r]) continue;
        if (out->size == out->capacity) {
            Py_ssize_t capacity = out->capacity ? 2 * out->capacity : 1024;
            int32_t *data = realloc(out->data, (size_t)capacity * RECORD * sizeof(int32_t));
            if (data == NULL) return -1;
            out->data = data;
            out->capacity = capacity;
        }
        int32_t *record = out->data + RECORD * out->size++;
        int32_t x1 = f->x1[r] + hole, y1 = f->y1[r] + hole;
        record[0] = level_index;
        record[1] = f->x0[r] - hole;
        record[2] = f->y0[r] - hole;
        record[3] = x1 + 1 < width - 1 ? x1 + 1 : width - 1;
        record[4] = y1 + 1 < height - 1 ? y1 + 1 : height - 1;
    }
    f->num_roots = live;
    return 0;
}

static int contour_boxes(const uint8_t *img, int32_t height, int32_t width, const int32_t *levels, int32_t num_levels,
                         Records *out) {
    int32_t n = height * width;
    Py_ssize_t start[257] = {0}, fill[256];
    Forest f = {0};
    int32_t *order = malloc((size_t)n * sizeof(int32_t));
    int status = -1;
    f.parent = malloc((size_t)n * sizeof(int32_t));
    f.x0 = malloc((size_t)n * sizeof(int32_t));
    f.y0 = malloc((size_t)n * sizeof(int32_t));
    f.x1 = malloc((size_t)n * sizeof(int32_t));
    f.y1 = malloc((size_t)n * sizeof(int32_t));
    f.roots = malloc((size_t)n * sizeof(int32_t));
    f.touches = malloc((size_t)n);
    if (!order || !f.parent || !f.x0 || !f.y0 || !f.x1 || !f.y1 || !f.roots || !f.touches) goto done;
    for (int32_t p = 0; p < n; p++) start[img[p] + 1]++; /* counting sort of the pixels by value */
    for (int v = 0; v < 256; v++) start[v + 1] += start[v];
    for (int v = 0; v < 256; v++) fill[v] = start[v];
    for (int32_t p = 0; p < n; p++) order[fill[img[p]]++] = p;

    /* outer contours: components of img >= v (8-connected), values descending */
    for (int32_t p = 0; p < n; p++) f.parent[p] = -1;
    f.num_roots = 0;
    int32_t k = num_levels - 1;
    for (int v = 255; v >= 0 && k >= 0; v--) {
        for (Py_ssize_t i = start[v]; i < start[v + 1]; i++) {
            int32_t p = order[i], y = p / width, x = p - y * width;
            add_pixel(&f, p, x, y, height, width);
            for (int32_t yy = y > 0 ? y - 1 : 0; yy <= y + 1 && yy < height; yy++)
                for (int32_t xx = x > 0 ? x - 1 : 0; xx <= x + 1 && xx < width; xx++) {
                    int32_t q = yy * width + xx;
                    if (q != p && f.parent[q] >= 0) unite(&f, p, q);
                }
        }
        if (levels[k] == v && emit(&f, out, 0, k--, height, width) < 0) goto done;
    }
    /* hole contours: components of img < v (4-connected) away from the border, values ascending */
    for (int32_t p = 0; p < n; p++) f.parent[p] = -1;
    f.num_roots = 0;
    k = 0;
    for (int v = 0; v < 256 && k < num_levels; v++) {
        if (levels[k] == v && emit(&f, out, 1, k++, height, width) < 0) goto done;
        for (Py_ssize_t i = start[v]; i < start[v + 1]; i++) {
            int32_t p = order[i], y = p / width, x = p - y * width;
            add_pixel(&f, p, x, y, height, width);
            if (x > 0 && f.parent[p - 1] >= 0) unite(&f, p, p - 1);
            if (x < width - 1 && f.parent[p + 1] >= 0) unite(&f, p, p + 1);
            if (y > 0 && f.parent[p - width] >= 0) unite(&f, p, p - width);
            if (y < height - 1 && f.parent[p + width] >= 0) unite(&f, p, p + width);
        }
    }
    status = 0;
done:
    free(order);
    free(f.parent);
    free(f.x0);
    free(f.y0);
    free(f.x1);
    free(f.y1);
    free(f.roots);
    free(f.touches);
    return status;
}

static PyObject *level_contour_boxes(PyObject *self, PyObject *args) {
    Py_buffer image, levels;
    int height, width;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiy*", &image, &height, &width, &levels)) return NULL;
    const int32_t *level = levels.buf;
    Py_ssize_t num_levels = levels.len / (Py_ssize_t)sizeof(int32_t);
    int ascending = levels.len % (Py_ssize_t)sizeof(int32_t) == 0;
    for (Py_ssize_t k = 0; ascending && k < num_levels; k++)
        ascending = level[k] >= 0 && level[k] <= 255 && (k == 0 || level[k] > level[k - 1]);
    if (height <= 0 || width <= 0 || (Py_ssize_t)height * width > INT32_MAX || image.len != (Py_ssize_t)height * width) {
        PyErr_Format(PyExc_ValueError, "level_contour_boxes: image holds %zd bytes, not height * width = %d * %d",
                     image.len, height, width);
    } else if (!ascending) {
        PyErr_SetString(PyExc_ValueError, "level_contour_boxes: levels must be int32 values in [0, 255], strictly ascending");
    } else {
        Records out = {0};
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = contour_boxes(image.buf, height, width, level, (int32_t)num_levels, &out);
        Py_END_ALLOW_THREADS
        if (status < 0)
            PyErr_NoMemory();
        else
            result = PyBytes_FromStringAndSize((const char *)out.data, out.size * RECORD * (Py_ssize_t)sizeof(int32_t));
        free(out.data);
    }
    PyBuffer_Release(&image);
    PyBuffer_Release(&levels);
    return result;
}

static PyMethodDef methods[] = {
    {"level_contour_boxes", level_contour_boxes, METH_VARARGS,
     "level_contour_boxes(image, height, width, levels) -> bytes of int32 records (level_index, x0, y0, x1, y1)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_component_tree",
                                    "Every level's contour boxes from two union-find forests (see the C source).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__component_tree(void) { return PyModule_Create(&module); }
