/* The writing walk of devtools/state_hasher.py in C: the same bytes, the same caches.

   devtools.state_hasher.StateHasher is the reference: its Python methods ``_root_pieces``,
   ``_bytes``, ``_large_pieces`` and ``_pieces`` are what ``pieces_of`` and the functions below
   it do here (each names its Python twin), over the hasher's own caches
   (``_cache``: id -> (container, its canonical bytes); ``_memo``: path -> (container, its keys,
   where each child's bytes are in its pieces, the pieces)), and the Hypothesis laws in
   tests/devtools/test_state_hasher.py hold both walks to devtools.canonical.state_hash. This
   file only makes the walk cheap: the loops over a container's children, the cache lookups and
   the joins cost ~15-25 us an event in Python on a 20 kB state, a few here.

   The C side writes only plain ASCII texts itself: null, true, false, an int of 64 bits and a
   str that needs no escaping. Everything else (a float, an escaped or non-ASCII string, a
   bigger int, a subclass, what JSON cannot carry) is the hasher's ``_scalar``; key order is
   its ``_sorted``, key spellings its ``_spell``, a subtree past the depth limit
   ``canonical_bytes``: the rules stay in one place, devtools/state_hasher.py and
   devtools/canonical.py. Their exceptions (``_Whole``, CanonicalError) pass through. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define SMALL_PIECES 40 /* a container under memo_min (16) items has at most 2 * 16 + 2 */

static PyObject *EMPTY_DICT_BYTES, *EMPTY_LIST_BYTES, *B_OPEN_DICT, *B_CLOSE_DICT, *B_OPEN_LIST,
    *B_CLOSE_LIST, *B_COMMA, *B_NULL, *B_TRUE, *B_FALSE;

typedef struct {
    PyObject *cache;  /* hasher._cache */
    PyObject *memo;   /* hasher._memo */
    PyObject *keys;   /* hasher._keys */
    PyObject *sorted; /* hasher._sorted */
    PyObject *spell;  /* hasher._spell */
    PyObject *scalar; /* hasher._scalar */
    PyObject *whole;  /* canonical_bytes */
    Py_ssize_t max_depth, memo_min;
} Walk;


/* The tuples and lists made here hold only bytes, str, int and the state's own containers,
   and nothing of the state refers back to them: they can be in no reference cycle, so the
   cyclic GC is told not to traverse them (a few per container written, else a collection
   every few dozen events, each walking the cache). Returns its argument. */
static PyObject *
untracked(PyObject *op)
{
    if (op != NULL && PyObject_GC_IsTracked(op))
        PyObject_GC_UnTrack(op);
    return op;
}

/* ------------------------------------------------------------------ scalars */

/* A str that JSON writes as is between quotes (ASCII, no control character, quote or
   backslash): its bytes; NULL without an error set when it is not one. */
static PyObject *
plain_string(PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const unsigned char *s = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n + 2);
    if (out == NULL)
        return NULL;
    char *d = PyBytes_AS_STRING(out);
    d[0] = '"';
    memcpy(d + 1, s, n);
    d[n + 1] = '"';
    return out;
}

/* The bytes of a value that is not a container: the plain cases here, the rest from
   hasher._scalar (which raises for what JSON cannot carry). New reference or NULL. */
static PyObject *
write_scalar(Walk *w, PyObject *value)
{
    if (PyUnicode_CheckExact(value)) {
        PyObject *out = plain_string(value);
        if (out != NULL || PyErr_Occurred())
            return out;
    }
    else if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (!overflow) {
            char text[32];
            int len = snprintf(text, sizeof text, "%lld", n);
            return PyBytes_FromStringAndSize(text, len);
        }
    }
    else if (value == Py_None) {
        return Py_NewRef(B_NULL);
    }
    else if (value == Py_True) {
        return Py_NewRef(B_TRUE);
    }
    else if (value == Py_False) {
        return Py_NewRef(B_FALSE);
    }
    return PyObject_CallOneArg(w->scalar, value);
}

/* ------------------------------------------------------------------ pieces */

/* path + (key,): a new tuple. */
static PyObject *
child_path(PyObject *path, PyObject *key)
{
    Py_ssize_t n = PyTuple_GET_SIZE(path);
    PyObject *out = PyTuple_New(n + 1);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(path, i)));
    PyTuple_SET_ITEM(out, n, Py_NewRef(key));
    return untracked(out);
}

/* The cached bytes of container ``value`` (borrowed); NULL when there are none (or with an
   error set). An entry counts only for the very object it was written for: ids are reused. */
static PyObject *
cached_bytes(Walk *w, PyObject *value)
{
    PyObject *id = PyLong_FromVoidPtr(value);
    if (id == NULL)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(w->cache, id);
    Py_DECREF(id);
    if (known != NULL && PyTuple_CheckExact(known) && PyTuple_GET_SIZE(known) == 2 &&
        PyTuple_GET_ITEM(known, 0) == value)
        return PyTuple_GET_ITEM(known, 1);
    return NULL;
}

static PyObject *write_container(Walk *w, PyObject *value, PyObject *path);

/* A child's bytes: the cached bytes of a container seen before, else written. */
static PyObject *
write_child(Walk *w, PyObject *child, PyObject *path, PyObject *key)
{
    if (!PyDict_CheckExact(child) && !PyList_CheckExact(child))
        return write_scalar(w, child);
    PyObject *known = cached_bytes(w, child);
    if (known != NULL)
        return Py_NewRef(known);
    if (PyErr_Occurred())
        return NULL;
    PyObject *sub = child_path(path, key);
    if (sub == NULL)
        return NULL;
    PyObject *out = write_container(w, child, sub);
    Py_DECREF(sub);
    return out;
}

/* ``,"key":`` (hasher._keys, else hasher._spell). New reference. */
static PyObject *
key_name(Walk *w, PyObject *key)
{
    PyObject *name = PyDict_GetItemWithError(w->keys, key);
    if (name != NULL)
        return Py_NewRef(name);
    if (PyErr_Occurred())
        return NULL;
    return PyObject_CallOneArg(w->spell, key);
}

/* A dict's keys in JCS order: sorted here when all are ASCII str (code-point order is then
   UTF-16 order), else by hasher._sorted (UTF-16 order, or _Whole for keys that are not str). */
static PyObject *
sorted_keys(Walk *w, PyObject *value)
{
    PyObject *keys = PyDict_Keys(value);
    if (keys == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
            Py_DECREF(keys);
            return PyObject_CallOneArg(w->sorted, value);
        }
    }
    if (PyList_Sort(keys) < 0) {
        Py_DECREF(keys);
        return NULL;
    }
    return untracked(keys);
}

/* Appends a new reference to pieces (stealing it); -1 on error (and then releases it). */
static int
push(PyObject *pieces, PyObject *piece)
{
    if (piece == NULL)
        return -1;
    int rc = PyList_Append(pieces, piece);
    Py_DECREF(piece);
    return rc;
}

/* The pieces of a container, as StateHasher._pieces: ``[`` item ``,`` item … ``]``, or
   ``{`` key+colon value ``,key``+colon value … ``}``. ``ordered``: a dict's keys in JCS order
   (NULL: asked of hasher._sorted). New list or NULL. */
static PyObject *
container_pieces(Walk *w, PyObject *value, PyObject *path, PyObject *ordered)
{
    PyObject *pieces = untracked(PyList_New(0));
    if (pieces == NULL)
        return NULL;
    if (PyList_CheckExact(value)) {
        Py_ssize_t n = PyList_GET_SIZE(value);
        if (n == 0) {
            if (push(pieces, Py_NewRef(EMPTY_LIST_BYTES)) < 0)
                goto error;
            return pieces;
        }
        if (push(pieces, Py_NewRef(B_OPEN_LIST)) < 0)
            goto error;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL)
                goto error;
            PyObject *piece = write_child(w, PyList_GET_ITEM(value, i), path, index);
            Py_DECREF(index);
            if (push(pieces, piece) < 0)
                goto error;
            if (push(pieces, Py_NewRef(i + 1 < n ? B_COMMA : B_CLOSE_LIST)) < 0)
                goto error;
        }
        return pieces;
    }
    if (PyDict_GET_SIZE(value) == 0) {
        if (push(pieces, Py_NewRef(EMPTY_DICT_BYTES)) < 0)
            goto error;
        return pieces;
    }
    PyObject *keys = ordered ? Py_NewRef(ordered) : sorted_keys(w, value);
    if (keys == NULL)
        goto error;
    if (!PyList_CheckExact(keys)) {
        Py_DECREF(keys);
        PyErr_SetString(PyExc_TypeError, "_sorted must give a list");
        goto error;
    }
    if (push(pieces, Py_NewRef(B_OPEN_DICT)) < 0)
        goto error_keys;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        PyObject *name = key_name(w, key);
        if (name == NULL)
            goto error_keys;
        if (i == 0) { /* the first key has no comma before it */
            PyObject *bare = PyBytes_FromStringAndSize(PyBytes_AS_STRING(name) + 1,
                                                       PyBytes_GET_SIZE(name) - 1);
            Py_SETREF(name, bare);
        }
        if (push(pieces, name) < 0)
            goto error_keys;
        PyObject *child = PyDict_GetItemWithError(value, key);
        if (child == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, key);
            goto error_keys;
        }
        if (push(pieces, write_child(w, child, path, key)) < 0)
            goto error_keys;
    }
    Py_DECREF(keys);
    if (push(pieces, Py_NewRef(B_CLOSE_DICT)) < 0)
        goto error;
    return pieces;
error_keys:
    Py_DECREF(keys);
error:
    Py_DECREF(pieces);
    return NULL;
}

/* b"".join(pieces), a list of bytes. */
static PyObject *
join(PyObject *pieces)
{
    Py_ssize_t n = PyList_GET_SIZE(pieces), size = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        size += PyBytes_GET_SIZE(PyList_GET_ITEM(pieces, i));
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *d = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *piece = PyList_GET_ITEM(pieces, i);
        memcpy(d, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece));
        d += PyBytes_GET_SIZE(piece);
    }
    return out;
}

/* ------------------------------------------------------------------ large containers */

/* Which children of ``value`` are other objects than ``old``'s at the same position (the
   two have the same keys in the same order, or are lists of one length): their positions in
   a new list, as StateHasher._large finds them with compress/is_not. */
static PyObject *
changed_positions(PyObject *value, PyObject *old)
{
    PyObject *changed = PyList_New(0);
    if (changed == NULL)
        return NULL;
    if (PyList_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (PyList_GET_ITEM(value, i) != PyList_GET_ITEM(old, i) &&
                push(changed, PyLong_FromSsize_t(i)) < 0)
                goto error;
        }
        return changed;
    }
    Py_ssize_t pos_new = 0, pos_old = 0, at = 0;
    PyObject *k1, *v1, *k2, *v2;
    while (PyDict_Next(value, &pos_new, &k1, &v1) && PyDict_Next(old, &pos_old, &k2, &v2)) {
        if (v1 != v2 && push(changed, PyLong_FromSsize_t(at)) < 0)
            goto error;
        at++;
    }
    return changed;
error:
    Py_DECREF(changed);
    return NULL;
}

/* StateHasher._evict: drop the cache entry of ``old``, a container another one replaced. */
static int
evict(Walk *w, PyObject *old)
{
    if (cached_bytes(w, old) == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *id = PyLong_FromVoidPtr(old);
    if (id == NULL)
        return -1;
    int rc = PyDict_DelItem(w->cache, id);
    Py_DECREF(id);
    return rc;
}

/* StateHasher._large_pieces: the pieces of a container of memo_min items or more, from those
   of the one that was at the same path before when it has the same keys in the same order (or
   is a list of the same length); else written whole; kept for the next. New list or NULL. */
static PyObject *
large_pieces(Walk *w, PyObject *value, PyObject *path)
{
    int is_list = PyList_CheckExact(value);
    PyObject *keys = NULL, *slots = NULL, *pieces = NULL, *out = NULL;
    PyObject *memo = PyDict_GetItemWithError(w->memo, path); /* borrowed */
    if (memo == NULL && PyErr_Occurred())
        return NULL;
    if (!is_list) {
        keys = untracked(PyDict_Keys(value));
        if (keys == NULL)
            return NULL;
    }
    if (memo != NULL && PyTuple_CheckExact(memo) && PyTuple_GET_SIZE(memo) == 4) {
        PyObject *old = PyTuple_GET_ITEM(memo, 0), *old_keys = PyTuple_GET_ITEM(memo, 1);
        if (evict(w, old) < 0)
            goto done;
        PyObject *old_slots = PyTuple_GET_ITEM(memo, 2), *old_pieces = PyTuple_GET_ITEM(memo, 3);
        int same;
        if (is_list)
            same = PyList_CheckExact(old) && PyList_GET_SIZE(old) == PyList_GET_SIZE(value);
        else {
            same = PyList_CheckExact(old_keys) && PyDict_CheckExact(old)
                       ? PyObject_RichCompareBool(keys, old_keys, Py_EQ)
                       : 0;
            if (same < 0)
                goto done;
        }
        if (same) {
            PyObject *changed = changed_positions(value, old);
            if (changed == NULL)
                goto done;
            pieces = untracked(PyList_GetSlice(old_pieces, 0, PyList_GET_SIZE(old_pieces)));
            if (pieces == NULL) {
                Py_DECREF(changed);
                goto done;
            }
            for (Py_ssize_t c = 0; c < PyList_GET_SIZE(changed); c++) {
                PyObject *index = PyList_GET_ITEM(changed, c);
                Py_ssize_t i = PyLong_AsSsize_t(index);
                PyObject *key = is_list ? index : PyList_GET_ITEM(keys, i);
                PyObject *child = is_list ? PyList_GET_ITEM(value, i)
                                          : PyDict_GetItemWithError(value, key);
                Py_ssize_t slot = PyLong_AsSsize_t(PyList_GET_ITEM(old_slots, i));
                PyObject *piece = child ? write_child(w, child, path, key) : NULL;
                if (piece == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_SetObject(PyExc_KeyError, key);
                    Py_DECREF(changed);
                    goto done;
                }
                if (PyList_SetItem(pieces, slot, piece) < 0) { /* steals piece */
                    Py_DECREF(changed);
                    goto done;
                }
            }
            Py_DECREF(changed);
            slots = Py_NewRef(old_slots);
            goto store;
        }
    }
    if (is_list) {
        pieces = container_pieces(w, value, path, NULL);
        if (pieces == NULL)
            goto done;
        Py_ssize_t n = PyList_GET_SIZE(value);
        slots = untracked(PyList_New(n));
        if (slots == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *slot = PyLong_FromSsize_t(2 * i + 1);
            if (slot == NULL)
                goto done;
            PyList_SET_ITEM(slots, i, slot);
        }
    }
    else {
        PyObject *ordered = sorted_keys(w, value);
        if (ordered == NULL)
            goto done;
        pieces = container_pieces(w, value, path, ordered);
        PyObject *order = pieces ? PyDict_New() : NULL;
        for (Py_ssize_t at = 0; order && at < PyList_GET_SIZE(ordered); at++) {
            PyObject *slot = PyLong_FromSsize_t(2 + 2 * at);
            if (slot == NULL || PyDict_SetItem(order, PyList_GET_ITEM(ordered, at), slot) < 0)
                Py_CLEAR(order);
            Py_XDECREF(slot);
        }
        Py_DECREF(ordered);
        if (order == NULL)
            goto done;
        Py_ssize_t n = PyList_GET_SIZE(keys);
        slots = untracked(PyList_New(n));
        for (Py_ssize_t i = 0; slots && i < n; i++) {
            PyObject *slot = PyDict_GetItemWithError(order, PyList_GET_ITEM(keys, i));
            if (slot == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_KeyError, "a key missing from _sorted");
                Py_CLEAR(slots);
                break;
            }
            PyList_SET_ITEM(slots, i, Py_NewRef(slot));
        }
        Py_DECREF(order);
        if (slots == NULL)
            goto done;
    }
store: {
    PyObject *entry = untracked(PyTuple_Pack(4, value, keys ? keys : Py_None, slots, pieces));
    if (entry == NULL || PyDict_SetItem(w->memo, path, entry) < 0) {
        Py_XDECREF(entry);
        goto done;
    }
    Py_DECREF(entry);
    out = Py_NewRef(pieces);
}
done:
    Py_XDECREF(keys);
    Py_XDECREF(slots);
    Py_XDECREF(pieces);
    return out;
}

/* ------------------------------------------------------------------ containers */

/* The bytes of a container written in pieces (a new list, released here), or NULL. */
static PyObject *
joined(PyObject *pieces)
{
    if (pieces == NULL)
        return NULL;
    PyObject *out = join(pieces);
    Py_DECREF(pieces);
    return out;
}

/* A container not in the cache, written (as StateHasher._bytes does) and cached. */
static PyObject *
write_container(Walk *w, PyObject *value, PyObject *path)
{
    Py_ssize_t size = PyDict_CheckExact(value) ? PyDict_GET_SIZE(value) : PyList_GET_SIZE(value);
    PyObject *data;
    if (PyTuple_GET_SIZE(path) >= w->max_depth)
        data = PyObject_CallOneArg(w->whole, value);
    else if (size >= w->memo_min)
        data = joined(large_pieces(w, value, path)); /* StateHasher._large */
    else
        data = joined(container_pieces(w, value, path, NULL));
    if (data == NULL)
        return NULL;
    PyObject *id = PyLong_FromVoidPtr(value);
    PyObject *entry = id ? untracked(PyTuple_Pack(2, value, data)) : NULL;
    if (entry == NULL || PyDict_SetItem(w->cache, id, entry) < 0)
        Py_CLEAR(data);
    Py_XDECREF(entry);
    Py_XDECREF(id);
    return data;
}

/* ------------------------------------------------------------------ module */

static PyObject *
get(PyObject *hasher, const char *name, int dict)
{
    PyObject *out = PyObject_GetAttrString(hasher, name);
    if (out != NULL && dict && !PyDict_CheckExact(out)) {
        PyErr_Format(PyExc_TypeError, "hasher.%s must be a dict", name);
        Py_CLEAR(out);
    }
    return out;
}

/* StateHasher._root_pieces: the canonical bytes of a state in pieces, the root neither
   joined nor cached (it is new at every event: joining it would copy the whole state once
   more only to hash it). */
static PyObject *
root_pieces(Walk *w, PyObject *value, PyObject *path)
{
    if (PyDict_CheckExact(value) || PyList_CheckExact(value)) {
        Py_ssize_t size =
            PyDict_CheckExact(value) ? PyDict_GET_SIZE(value) : PyList_GET_SIZE(value);
        if (size >= w->memo_min)
            return large_pieces(w, value, path);
        return container_pieces(w, value, path, NULL);
    }
    PyObject *data = write_scalar(w, value);
    if (data == NULL)
        return NULL;
    PyObject *out = PyList_New(1);
    if (out == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyList_SET_ITEM(out, 0, data);
    return out;
}

static PyObject *
pieces_of(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "pieces_of(hasher, value, canonical_bytes, max_depth, memo_min)");
        return NULL;
    }
    Walk w = {0};
    PyObject *out = NULL;
    w.max_depth = PyLong_AsSsize_t(args[3]);
    w.memo_min = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred())
        return NULL;
    w.whole = args[2];
    if (!(w.cache = get(args[0], "_cache", 1)) || !(w.memo = get(args[0], "_memo", 1)) ||
        !(w.keys = get(args[0], "_keys", 1)) || !(w.sorted = get(args[0], "_sorted", 0)) ||
        !(w.spell = get(args[0], "_spell", 0)) || !(w.scalar = get(args[0], "_scalar", 0)))
        goto done;
    PyObject *root = PyTuple_New(0);
    if (root == NULL)
        goto done;
    out = root_pieces(&w, args[1], root);
    Py_DECREF(root);
done:
    Py_XDECREF(w.cache);
    Py_XDECREF(w.memo);
    Py_XDECREF(w.keys);
    Py_XDECREF(w.sorted);
    Py_XDECREF(w.spell);
    Py_XDECREF(w.scalar);
    return out;
}

static PyMethodDef methods[] = {
    {"pieces_of", (PyCFunction)(void (*)(void))pieces_of, METH_FASTCALL,
     "pieces_of(hasher, value, canonical_bytes, max_depth, memo_min): the canonical bytes of "
     "value in pieces, as hasher._root_pieces(value) writes them, over the hasher's caches."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "devtools._statehash",
    .m_doc = "The writing walk of devtools.state_hasher in C (see devtools/_statehash.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__statehash(void)
{
    if (!(EMPTY_DICT_BYTES = PyBytes_FromString("{}")) ||
        !(EMPTY_LIST_BYTES = PyBytes_FromString("[]")) ||
        !(B_OPEN_DICT = PyBytes_FromString("{")) || !(B_CLOSE_DICT = PyBytes_FromString("}")) ||
        !(B_OPEN_LIST = PyBytes_FromString("[")) || !(B_CLOSE_LIST = PyBytes_FromString("]")) ||
        !(B_COMMA = PyBytes_FromString(",")) || !(B_NULL = PyBytes_FromString("null")) ||
        !(B_TRUE = PyBytes_FromString("true")) || !(B_FALSE = PyBytes_FromString("false")))
        return NULL;
    return PyModule_Create(&module);
}
