/* The ``--grep`` walk of replayer/grep.py in C: the same rule, the same counts.

   replayer.grep.LineMatches is the reference, and the Hypothesis law in
   tests/replayer/test_grep.py holds both to replayer.grep.count_matches (every line written
   afresh). This file only makes the walk cheap: one event of a reducer changes a few leaves of
   a state of thousands, and the pure-Python walk spent most of its time finding them (a loop
   over every key of a 400-key dict is ~15 us in Python, ~1 us here).

   What it keeps, like the Python class: for each container of the latest state a Node with the
   number of matching lines among the container's items and its closing line, and its container
   children's Nodes (by key for a dict, by position for a list). ``update(state)`` walks only
   what is not the same object as before:

   - dicts are merged by position (a reducer's ``{**a, k: v}``, ``dict(a)`` then ``pop`` keep
     the order of the keys they keep), a key found on one side only being added or removed;
     keys out of order fall back to lookups for the rest;
   - lists trim their common ends (type-strict equality) and walk the middle pairwise;
   - a changed leaf writes and searches its old and its new line.

   A pattern that is a plain literal (no metacharacter, no flag that changes matching: the
   constructor's ``literal``) is tested as a substring, with the same answer as the regex.

   The C side writes only plain ASCII texts (null, true, false, an int of 64 bits, a str that
   needs no escaping); every other text (a float, an escaped or non-ASCII string, a key that is
   not a str, a value that is not JSON) comes from the Python functions the constructor gets, so
   the rule stays in one place: replayer/grep.py. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
/* The layout of a dict's entries, to step through two dicts without a call per item (see
   Items below). It is CPython's own header for the version this module is built against. */
#define Py_BUILD_CORE 1
#include "internal/pycore_dict.h"
#undef Py_BUILD_CORE

#define MEMO_LIMIT (1 << 16) /* key texts and heads remembered, as grep._MEMO_LIMIT */

enum { K_SCALAR = 0, K_DICT = 1, K_LIST = 2 };

static PyObject *EMPTY;       /* "" */

/* ------------------------------------------------------------------ Node */

typedef struct {
    PyObject_HEAD
    Py_ssize_t count; /* matching lines among the items and the closing line (0 when empty) */
    int kind;         /* K_DICT or K_LIST */
    PyObject *kids;   /* K_DICT: key -> Node of each container item (NULL while there is none);
                         K_LIST: a list, the Node or None of each item */
} Node;

static void
node_dealloc(Node *self)
{
    Py_XDECREF(self->kids);
    PyObject_Free(self);
}

static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replayer._linematch.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = (destructor)node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "What LineMatches remembers of one container of the state.",
};

static PyObject *
node_new(int kind, PyObject *kids, Py_ssize_t count) /* steals kids (which may be NULL) */
{
    Node *node = PyObject_New(Node, &NodeType);
    if (node == NULL) {
        Py_XDECREF(kids);
        return NULL;
    }
    node->kind = kind;
    node->kids = kids;
    node->count = count;
    return (PyObject *)node;
}

/* A dict Node's child for ``key`` (new reference): its Node, or None for a leaf. */
static PyObject *
kid_get(Node *node, PyObject *key)
{
    PyObject *child = node->kids ? PyDict_GetItemWithError(node->kids, key) : NULL;
    if (child == NULL && PyErr_Occurred())
        return NULL;
    return Py_NewRef(child ? child : Py_None);
}

static int
kid_set(Node *node, PyObject *key, PyObject *child) /* child: a Node */
{
    if (node->kids == NULL && (node->kids = PyDict_New()) == NULL)
        return -1;
    return PyDict_SetItem(node->kids, key, child);
}

/* ------------------------------------------------------------------ values */

static int
kind_of(PyObject *value) /* grep/diff's container_kind: a tuple is an array */
{
    if (PyDict_Check(value))
        return K_DICT;
    if (PyList_Check(value) || PyTuple_Check(value))
        return K_LIST;
    return K_SCALAR;
}

static Py_ssize_t
size_of(PyObject *value)
{
    if (PyDict_CheckExact(value))
        return PyDict_GET_SIZE(value);
    if (PyList_CheckExact(value))
        return PyList_GET_SIZE(value);
    if (PyTuple_CheckExact(value))
        return PyTuple_GET_SIZE(value);
    return PyObject_Length(value);
}

static PyObject * /* borrowed */
item_at(PyObject *seq, Py_ssize_t i)
{
    return PyList_Check(seq) ? PyList_GET_ITEM(seq, i) : PyTuple_GET_ITEM(seq, i);
}

/* Type-strict equality (diff.equal): 1, 1.0 and True differ. 1 yes, 0 no, -1 error. */
static int
strict_equal(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    int kind = kind_of(a);
    if (kind != kind_of(b))
        return 0;
    if (kind == K_SCALAR) {
        if (Py_TYPE(a) != Py_TYPE(b))
            return 0;
        return PyObject_RichCompareBool(a, b, Py_EQ);
    }
    Py_ssize_t n = size_of(a);
    if (n < 0)
        return -1;
    if (n != size_of(b))
        return 0;
    if (kind == K_DICT) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(a, &pos, &key, &value)) {
            PyObject *other = PyDict_GetItemWithError(b, key);
            if (other == NULL)
                return PyErr_Occurred() ? -1 : 0;
            int same = strict_equal(value, other);
            if (same != 1)
                return same;
        }
        return 1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int same = strict_equal(item_at(a, i), item_at(b, i));
        if (same != 1)
            return same;
    }
    return 1;
}

/* ------------------------------------------------------------------ LineMatches */

typedef struct {
    PyObject_HEAD
    PyObject *search;      /* pattern.search */
    PyObject *literal;     /* the pattern's text when it is a plain literal (else NULL) */
    const char *literal_ascii; /* its characters when they are all ASCII (else NULL) */
    Py_ssize_t literal_len;
    PyObject *scalar_text; /* grep.scalar_text (what the C side does not write itself) */
    PyObject *key_text;    /* grep.key_text */
    PyObject *keys;        /* str key -> its text, '"key": ' */
    PyObject *heads;       /* prefix -> bits: does prefix + "{", "{}", "[", "[]" match */
    int closes[3];         /* does "}" ([K_DICT]) or "]" ([K_LIST]) match */
    PyObject *state;       /* the latest state (NULL before the first update) */
    PyObject *node;        /* its Node, or None for a scalar state */
    Py_ssize_t count;      /* matching lines of the latest state */
} Matcher;

static int
line_hits(Matcher *m, PyObject *line)
{
    if (m->literal != NULL) /* a substring test: the same answer, without the regex engine */
        return PyUnicode_Contains(line, m->literal);
    PyObject *found = PyObject_CallOneArg(m->search, line);
    if (found == NULL)
        return -1;
    int hit = found != Py_None;
    Py_DECREF(found);
    return hit;
}

/* ---------------------------------------------------- lines written on the stack

   Most lines of a state are plain ASCII: a str key that needs no escaping, then null, true,
   false, an int of 64 bits, an ASCII string that needs no escaping or a container's opening.
   Those are written into a buffer on the stack, with no Python object made and no memo looked
   up; a literal pattern is then a substring test there. Any other line is written by the
   Python functions (key_text, scalar_text) and searched as a str. */

enum { LINE_BYTES = 512 };

static int ascii_plain(PyObject *text);


static Py_ssize_t
put(char *buf, Py_ssize_t at, const char *text, Py_ssize_t n)
{
    if (at < 0 || at + n > LINE_BYTES)
        return -1;
    memcpy(buf + at, text, (size_t)n);
    return at + n;
}

static Py_ssize_t
put_quoted(char *buf, Py_ssize_t at, PyObject *text) /* '"text"'; text is ascii_plain */
{
    at = put(buf, at, "\"", 1);
    at = put(buf, at, (const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
    return put(buf, at, "\"", 1);
}

/* The start of the line of the item at ``key``: '"key": ', or nothing (``key`` NULL). Its
   length, or -1 when the key is not plain. */
static Py_ssize_t
put_key(char *buf, PyObject *key)
{
    if (key == NULL)
        return 0;
    if (!ascii_plain(key))
        return -1;
    return put(buf, put_quoted(buf, 0, key), ": ", 2);
}

/* A leaf after the line's start; the line's length, or -1 when the leaf is not plain. */
static Py_ssize_t
put_leaf(char *buf, Py_ssize_t at, PyObject *value)
{
    if (at < 0)
        return -1;
    if (value == Py_None)
        return put(buf, at, "null", 4);
    if (value == Py_True)
        return put(buf, at, "true", 4);
    if (value == Py_False)
        return put(buf, at, "false", 5);
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow)
            return -1;
        char digits[24];
        int d = (int)sizeof digits;
        unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
        do
            digits[--d] = (char)('0' + u % 10);
        while (u /= 10);
        if (x < 0)
            digits[--d] = '-';
        return put(buf, at, digits + d, (Py_ssize_t)sizeof digits - d);
    }
    if (ascii_plain(value))
        return put_quoted(buf, at, value);
    return -1;
}

static int
ascii_plain(PyObject *text) /* an exact ASCII str with no character JSON escapes */
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text))
        return 0;
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n; i++)
        if (chars[i] < 0x20 || chars[i] == '"' || chars[i] == '\\')
            return 0;
    return 1;
}

static void
forget_if_full(Matcher *m)
{
    if (PyDict_GET_SIZE(m->keys) >= MEMO_LIMIT || PyDict_GET_SIZE(m->heads) >= MEMO_LIMIT) {
        PyDict_Clear(m->keys);
        PyDict_Clear(m->heads);
    }
}

static PyObject * /* new reference: what a dict item's line starts with, '"key": ' */
key_text(Matcher *m, PyObject *key)
{
    if (!PyUnicode_CheckExact(key)) /* 1, 1.0 and True are one dict key but three texts */
        return PyObject_CallOneArg(m->key_text, key);
    PyObject *text = PyDict_GetItemWithError(m->keys, key);
    if (text != NULL)
        return Py_NewRef(text);
    if (PyErr_Occurred())
        return NULL;
    forget_if_full(m);
    char buf[LINE_BYTES];
    Py_ssize_t n = put_key(buf, key); /* '"key": ' */
    text = n >= 0 ? PyUnicode_FromStringAndSize(buf, n) : PyObject_CallOneArg(m->key_text, key);
    if (text == NULL)
        return NULL;
    if (PyDict_SetItem(m->keys, key, text) < 0) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* What a line of the item at ``key`` starts with (new reference): its key text, or "" for a
   list's item or the state itself (``key`` NULL). */
static PyObject *
prefix_of(Matcher *m, PyObject *key)
{
    return key == NULL ? Py_NewRef(EMPTY) : key_text(m, key);
}

static int
contains(const char *hay, Py_ssize_t n, const char *needle, Py_ssize_t k)
{
    if (n < k)
        return 0;
    const char *last = hay + (n - k);
    for (const char *at = hay; at <= last; at++) {
        at = memchr(at, needle[0], (size_t)(last - at + 1));
        if (at == NULL)
            return 0;
        if (memcmp(at, needle, (size_t)k) == 0)
            return 1;
    }
    return 0;
}

/* Whether a line written on the stack matches. */
static int
buffer_hits(Matcher *m, const char *buf, Py_ssize_t n)
{
    if (m->literal_ascii != NULL)
        return contains(buf, n, m->literal_ascii, m->literal_len);
    if (m->literal != NULL)
        return 0; /* an ASCII line holds no literal with other characters */
    PyObject *line = PyUnicode_New(n, 127);
    if (line == NULL)
        return -1;
    memcpy(PyUnicode_1BYTE_DATA(line), buf, (size_t)n);
    int hit = line_hits(m, line);
    Py_DECREF(line);
    return hit;
}

/* Whether the line of a leaf (``value`` at ``key``) matches. */
static int
leaf_hits(Matcher *m, PyObject *key, PyObject *value)
{
    char buf[LINE_BYTES];
    Py_ssize_t n = put_leaf(buf, put_key(buf, key), value);
    if (n >= 0)
        return buffer_hits(m, buf, n);
    PyObject *prefix = prefix_of(m, key);
    if (prefix == NULL)
        return -1;
    n = put_leaf(buf, 0, value);
    PyObject *text =
        n >= 0 ? PyUnicode_FromStringAndSize(buf, n) : PyObject_CallOneArg(m->scalar_text, value);
    PyObject *line = text ? PyUnicode_Concat(prefix, text) : NULL;
    Py_DECREF(prefix);
    Py_XDECREF(text);
    if (line == NULL)
        return -1;
    int hit = line_hits(m, line);
    Py_DECREF(line);
    return hit;
}

static const char *OPENINGS[4] = {"{", "{}", "[", "[]"};

/* Whether a container's first line (its key's text, then "{", "{}", "[" or "[]") matches. A
   regex's answers are remembered by prefix, a literal is tested on the stack. */
static int
head_hits(Matcher *m, PyObject *key, int kind, int empty)
{
    int bit = (kind == K_LIST ? 2 : 0) + (empty ? 1 : 0);
    if (m->literal != NULL) {
        char buf[LINE_BYTES];
        Py_ssize_t n = put_key(buf, key);
        n = put(buf, n, OPENINGS[bit], (Py_ssize_t)strlen(OPENINGS[bit]));
        if (n >= 0)
            return buffer_hits(m, buf, n);
    }
    PyObject *prefix = prefix_of(m, key);
    if (prefix == NULL)
        return -1;
    PyObject *known = PyDict_GetItemWithError(m->heads, prefix);
    if (known != NULL) {
        Py_DECREF(prefix);
        return (int)((PyLong_AsLong(known) >> bit) & 1);
    }
    long bits = 0;
    for (int i = 0; i < 4 && !PyErr_Occurred(); i++) {
        PyObject *opening = PyUnicode_FromString(OPENINGS[i]);
        PyObject *line = opening ? PyUnicode_Concat(prefix, opening) : NULL;
        Py_XDECREF(opening);
        int hit = line ? line_hits(m, line) : -1;
        Py_XDECREF(line);
        if (hit > 0)
            bits |= 1L << i;
    }
    PyObject *memo = PyErr_Occurred() ? NULL : PyLong_FromLong(bits);
    if (memo != NULL) {
        forget_if_full(m);
        if (PyDict_SetItem(m->heads, prefix, memo) < 0)
            Py_CLEAR(memo);
    }
    Py_DECREF(prefix);
    if (memo == NULL)
        return -1;
    Py_DECREF(memo);
    return (int)((bits >> bit) & 1);
}

/* The matching lines ``value`` writes at ``key`` (``node``: its Node, None for a leaf). */
static Py_ssize_t
weight(Matcher *m, PyObject *key, PyObject *value, PyObject *node)
{
    if (node == Py_None)
        return leaf_hits(m, key, value);
    Node *n = (Node *)node;
    Py_ssize_t size = size_of(value);
    if (size < 0)
        return -1;
    int head = head_hits(m, key, n->kind, size == 0);
    if (head < 0)
        return -1;
    return head + n->count;
}

/* A new Node for ``value`` (new reference), or None for a leaf. */
static PyObject *
build(Matcher *m, PyObject *value)
{
    int kind = kind_of(value);
    if (kind == K_SCALAR)
        Py_RETURN_NONE;
    Py_ssize_t count = 0;
    PyObject *kids;
    if (kind == K_DICT) {
        kids = NULL; /* made with the first container item */
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            Py_INCREF(key);
            Py_INCREF(item);
            PyObject *child = build(m, item);
            Py_ssize_t w = child ? weight(m, key, item, child) : -1;
            if (w >= 0 && child != Py_None && kids == NULL && (kids = PyDict_New()) == NULL)
                w = -1;
            if (w >= 0 && child != Py_None && PyDict_SetItem(kids, key, child) < 0)
                w = -1;
            Py_XDECREF(child);
            Py_DECREF(key);
            Py_DECREF(item);
            if (w < 0) {
                Py_XDECREF(kids);
                return NULL;
            }
            count += w;
        }
    }
    else {
        Py_ssize_t n = size_of(value);
        kids = PyList_New(n);
        if (kids == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = Py_NewRef(item_at(value, i));
            PyObject *child = build(m, item);
            Py_ssize_t w = child ? weight(m, NULL, item, child) : -1;
            Py_DECREF(item);
            if (child != NULL)
                PyList_SET_ITEM(kids, i, child); /* steals */
            if (w < 0) {
                Py_DECREF(kids);
                return NULL;
            }
            count += w;
        }
    }
    if (size_of(value) > 0)
        count += m->closes[kind];
    return node_new(kind, kids, count);
}

static int walk_dict(Matcher *m, Node *node, PyObject *a, PyObject *b);
static int walk_list(Matcher *m, Node *node, PyObject *a, PyObject *b);

/* ``old`` (whose Node is ``node``) becomes ``new`` at ``key`` (NULL: a list's item or the
   state): adds to *delta how many more lines match, and sets *out to new's Node (new
   reference). 0, or -1 on error. The key's text is only written when a line that starts with
   it changes (a container walked in place changes its items' lines, not its own). */
static int
change(Matcher *m, PyObject *key, PyObject *old, PyObject *new, PyObject *node,
       Py_ssize_t *delta, PyObject **out)
{
    int kind = kind_of(old);
    if (node != Py_None && kind != K_SCALAR && kind == kind_of(new)) {
        Node *n = (Node *)node;
        Py_ssize_t before = n->count;
        Py_ssize_t old_size = size_of(old), new_size = size_of(new);
        if (old_size < 0 || new_size < 0)
            return -1;
        Py_INCREF(old); /* (held while Python code may run: searches, texts) */
        Py_INCREF(new);
        int failed = kind == K_DICT ? walk_dict(m, n, old, new) : walk_list(m, n, old, new);
        Py_DECREF(old);
        Py_DECREF(new);
        if (failed)
            return -1;
        if ((old_size == 0) != (new_size == 0)) /* its closing line comes or goes */
            n->count += new_size ? m->closes[kind] : -m->closes[kind];
        Py_ssize_t d = n->count - before;
        if ((old_size == 0) != (new_size == 0)) { /* its first line: "k": {}  <->  "k": { */
            int now = head_hits(m, key, kind, new_size == 0);
            int was = now < 0 ? -1 : head_hits(m, key, kind, old_size == 0);
            if (was < 0)
                return -1;
            d += now - was;
        }
        *delta += d;
        *out = Py_NewRef(node);
        return 0;
    }
    PyObject *fresh = build(m, new);
    if (fresh == NULL)
        return -1;
    Py_ssize_t now = weight(m, key, new, fresh);
    Py_ssize_t was = now < 0 ? -1 : weight(m, key, old, node);
    if (was < 0) {
        Py_DECREF(fresh);
        return -1;
    }
    *delta += now - was;
    *out = fresh;
    return 0;
}

/* Whether two values at one place need no walk: the same object, or equal leaves of one type. */
static int
unchanged_leaf(PyObject *old, PyObject *new)
{
    if (old == new)
        return 1;
    if (Py_TYPE(old) != Py_TYPE(new) || kind_of(old) != K_SCALAR)
        return 0;
    return PyObject_RichCompareBool(old, new, Py_EQ);
}

static int
dict_pair(Matcher *m, Node *node, PyObject *key, PyObject *old, PyObject *new, Py_ssize_t *delta)
{
    int same = unchanged_leaf(old, new);
    if (same)
        return same < 0 ? -1 : 0;
    /* (a leaf has no Node: no lookup) */
    PyObject *child = kind_of(old) == K_SCALAR ? Py_NewRef(Py_None) : kid_get(node, key);
    if (child == NULL)
        return -1;
    PyObject *out = NULL;
    int failed = change(m, key, old, new, child, delta, &out);
    if (!failed && out != child) {
        if (out == Py_None)
            failed = PyDict_DelItem(node->kids, key); /* it held a container before */
        else
            failed = kid_set(node, key, out);
    }
    Py_DECREF(child);
    Py_XDECREF(out);
    return failed ? -1 : 0;
}

static int
dict_removed(Matcher *m, Node *node, PyObject *key, PyObject *old, Py_ssize_t *delta)
{
    PyObject *child = kind_of(old) == K_SCALAR ? Py_NewRef(Py_None) : kid_get(node, key);
    if (child == NULL)
        return -1;
    Py_ssize_t w = weight(m, key, old, child);
    if (w >= 0 && child != Py_None && PyDict_DelItem(node->kids, key) < 0)
        w = -1;
    Py_DECREF(child);
    if (w < 0)
        return -1;
    *delta -= w;
    return 0;
}

static int
dict_added(Matcher *m, Node *node, PyObject *key, PyObject *new, Py_ssize_t *delta)
{
    PyObject *child = build(m, new);
    if (child == NULL)
        return -1;
    Py_ssize_t w = weight(m, key, new, child);
    if (w >= 0 && child != Py_None && kid_set(node, key, child) < 0)
        w = -1;
    Py_DECREF(child);
    if (w < 0)
        return -1;
    *delta += w;
    return 0;
}

/* A dict's items in order. A dict with str keys and its own table (what a reducer's dicts
   are) is read from its entries directly: _PyDict_Next costs ~50 instructions an item, and a
   400-key dict is walked on each side at every event. Any other dict goes through
   PyDict_Next. ``pos`` is the same index in both cases (the entry after the last one given). */
typedef struct {
    PyObject *dict;
    PyDictKeysObject *keys;         /* the table read directly, or NULL */
    PyDictUnicodeEntry *entries;
    Py_ssize_t pos;
} Items;

static void
items_start(Items *it, PyObject *dict, Py_ssize_t pos)
{
    PyDictObject *mp = (PyDictObject *)dict;
    it->dict = dict;
    it->pos = pos;
    it->keys = NULL;
    if (PyDict_CheckExact(dict) && mp->ma_values == NULL && DK_IS_UNICODE(mp->ma_keys)) {
        it->keys = mp->ma_keys;
        it->entries = DK_UNICODE_ENTRIES(mp->ma_keys);
    }
}

/* The next item (borrowed): 1, or 0 at the end; -1 if the dict was changed meanwhile. */
static int
items_next(Items *it, PyObject **key, PyObject **value)
{
    if (it->keys == NULL)
        return PyDict_Next(it->dict, &it->pos, key, value);
    if (((PyDictObject *)it->dict)->ma_keys != it->keys) {
        PyErr_SetString(PyExc_RuntimeError, "a dict of the state changed during the walk");
        return -1;
    }
    Py_ssize_t n = it->keys->dk_nentries;
    while (it->pos < n) {
        PyDictUnicodeEntry *entry = &it->entries[it->pos++];
        if (entry->me_value != NULL) {
            *key = entry->me_key;
            *value = entry->me_value;
            return 1;
        }
    }
    return 0;
}

/* Steps both past the items whose key and value are the same objects on both sides (most of
   a large dict, at one event), in one tight loop over the two tables when both are read
   directly; then gives the next item of each, as items_next. */
static void
step_both(Items *ia, Items *ib, Py_ssize_t *at_a, Py_ssize_t *at_b, PyObject **ka,
          PyObject **va, PyObject **kb, PyObject **vb, int *more_a, int *more_b)
{
    if (ia->keys != NULL && ib->keys != NULL &&
        ((PyDictObject *)ia->dict)->ma_keys == ia->keys &&
        ((PyDictObject *)ib->dict)->ma_keys == ib->keys) {
        PyDictUnicodeEntry *ea = ia->entries, *eb = ib->entries;
        Py_ssize_t i = ia->pos, j = ib->pos;
        Py_ssize_t na = ia->keys->dk_nentries, nb = ib->keys->dk_nentries;
        /* A table copied from the other ({**a, k: v}, dict(a)) keeps its entries in order, at
           the same place or shifted by the holes the copy closed: compare the two as memory,
           a block at a time, and entry by entry in a block that differs. An entry deleted on
           both sides is NULL on both: it compares equal, and is no item of either. */
        enum { BLOCK = 32, PART = 4 };
        for (;;) {
            while (i + BLOCK <= na && j + BLOCK <= nb &&
                   memcmp(ea + i, eb + j, BLOCK * sizeof *ea) == 0)
                i += BLOCK, j += BLOCK;
            while (i + PART <= na && j + PART <= nb &&
                   memcmp(ea + i, eb + j, PART * sizeof *ea) == 0)
                i += PART, j += PART; /* the block that differs, in parts */
            Py_ssize_t block_end = i + PART;
            while (i < na && j < nb && i < block_end) {
                if (ea[i].me_value == NULL)
                    i++;
                else if (eb[j].me_value == NULL)
                    j++;
                else if (ea[i].me_key == eb[j].me_key && ea[i].me_value == eb[j].me_value)
                    i++, j++;
                else
                    goto differs;
            }
            if (i >= na || j >= nb)
                break;
        }
    differs:
        ia->pos = i, ib->pos = j;
    }
    *at_a = ia->pos, *at_b = ib->pos;
    *more_a = items_next(ia, ka, va);
    *more_b = items_next(ib, kb, vb);
}

static int
same_key(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b))
        return PyUnicode_Compare(a, b) == 0;
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* The items of two dicts, merged by position; keys found on one side only are added or
   removed. When the order differs, the rest is matched by lookups (see the top). */
static int
walk_dict(Matcher *m, Node *node, PyObject *a, PyObject *b)
{
    Py_ssize_t delta = 0, at_a = 0, at_b = 0;
    PyObject *ka = NULL, *va = NULL, *kb = NULL, *vb = NULL;
    Items ia, ib;
    int more_a, more_b;
    items_start(&ia, a, 0);
    items_start(&ib, b, 0);
    step_both(&ia, &ib, &at_a, &at_b, &ka, &va, &kb, &vb, &more_a, &more_b);
    while (more_a > 0 && more_b > 0) {
        int same = same_key(ka, kb);
        if (same < 0)
            goto error;
        if (same) {
            if (va != vb && dict_pair(m, node, ka, va, vb, &delta) < 0)
                goto error;
            step_both(&ia, &ib, &at_a, &at_b, &ka, &va, &kb, &vb, &more_a, &more_b);
            continue;
        }
        int in_b = PyDict_Contains(b, ka);
        if (in_b < 0)
            goto error;
        if (!in_b) {
            if (dict_removed(m, node, ka, va, &delta) < 0)
                goto error;
            at_a = ia.pos;
            more_a = items_next(&ia, &ka, &va);
            continue;
        }
        int in_a = PyDict_Contains(a, kb);
        if (in_a < 0)
            goto error;
        if (!in_a) {
            if (dict_added(m, node, kb, vb, &delta) < 0)
                goto error;
            at_b = ib.pos;
            more_b = items_next(&ib, &kb, &vb);
            continue;
        }
        /* Out of order: the rest of a by lookup in b, then the rest of b not in a. Every key of
           either rest that the other side has is in the other's rest too. */
        items_start(&ia, a, at_a);
        while ((more_a = items_next(&ia, &ka, &va)) > 0) {
            PyObject *other = PyDict_GetItemWithError(b, ka);
            if (other == NULL && PyErr_Occurred())
                goto error;
            if (other == NULL ? dict_removed(m, node, ka, va, &delta)
                              : (va != other ? dict_pair(m, node, ka, va, other, &delta) : 0))
                goto error;
        }
        if (more_a < 0)
            goto error;
        items_start(&ib, b, at_b);
        while ((more_b = items_next(&ib, &kb, &vb)) > 0) {
            int known = PyDict_Contains(a, kb);
            if (known < 0 || (!known && dict_added(m, node, kb, vb, &delta) < 0))
                goto error;
        }
        if (more_b < 0)
            goto error;
        goto done;
    }
    while (more_a > 0) { /* b has ended: the rest of a was removed */
        if (dict_removed(m, node, ka, va, &delta) < 0)
            goto error;
        more_a = items_next(&ia, &ka, &va);
    }
    while (more_b > 0) { /* a has ended: the rest of b was added */
        if (dict_added(m, node, kb, vb, &delta) < 0)
            goto error;
        more_b = items_next(&ib, &kb, &vb);
    }
    if (more_a < 0 || more_b < 0)
        goto error;
done:
    node->count += delta;
    return 0;
error:
    return -1;
}

static int
walk_list(Matcher *m, Node *node, PyObject *a, PyObject *b)
{
    Py_ssize_t la = size_of(a), lb = size_of(b);
    if (la < 0 || lb < 0)
        return -1;
    PyObject *kids = node->kids;
    if (PyList_GET_SIZE(kids) != la) {
        PyErr_SetString(PyExc_RuntimeError, "a list of the state was changed in place");
        return -1;
    }
    Py_ssize_t shortest = la < lb ? la : lb, start = 0, end_a = la, end_b = lb, delta = 0;
    while (start < shortest) {
        int same = strict_equal(item_at(a, start), item_at(b, start));
        if (same < 0)
            goto error;
        if (!same)
            break;
        start++;
    }
    while (end_a > start && end_b > start) {
        int same = strict_equal(item_at(a, end_a - 1), item_at(b, end_b - 1));
        if (same < 0)
            goto error;
        if (!same)
            break;
        end_a--, end_b--;
    }
    Py_ssize_t na = end_a - start, nb = end_b - start, pairs = na < nb ? na : nb;
    for (Py_ssize_t i = start; i < start + pairs; i++) {
        PyObject *old = item_at(a, i), *new = item_at(b, i);
        int same = unchanged_leaf(old, new);
        if (same < 0)
            goto error;
        if (same)
            continue;
        PyObject *out = NULL;
        if (change(m, NULL, old, new, PyList_GET_ITEM(kids, i), &delta, &out) < 0)
            goto error;
        PyList_SetItem(kids, i, out); /* steals out, drops the old child */
    }
    if (na > nb) {
        Py_ssize_t cut = start + nb;
        for (Py_ssize_t i = cut; i < end_a; i++) {
            Py_ssize_t w = weight(m, NULL, item_at(a, i), PyList_GET_ITEM(kids, i));
            if (w < 0)
                goto error;
            delta -= w;
        }
        if (PyList_SetSlice(kids, cut, end_a, NULL) < 0)
            goto error;
    }
    else if (nb > na) {
        Py_ssize_t cut = start + na;
        PyObject *fresh = PyList_New(end_b - cut);
        if (fresh == NULL)
            goto error;
        for (Py_ssize_t i = cut; i < end_b; i++) {
            PyObject *child = build(m, item_at(b, i));
            if (child == NULL) {
                Py_DECREF(fresh);
                goto error;
            }
            PyList_SET_ITEM(fresh, i - cut, child);
            Py_ssize_t w = weight(m, NULL, item_at(b, i), child);
            if (w < 0) {
                Py_DECREF(fresh);
                goto error;
            }
            delta += w;
        }
        int bad = PyList_SetSlice(kids, cut, cut, fresh);
        Py_DECREF(fresh);
        if (bad < 0)
            goto error;
    }
    node->count += delta;
    return 0;
error:
    return -1;
}

/* ------------------------------------------------------------------ the Python type */

static int
matcher_init(Matcher *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"search", "scalar_text", "key_text", "literal", NULL};
    PyObject *search, *scalar, *key, *literal = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O", names, &search, &scalar, &key,
                                     &literal))
        return -1;
    if (literal != Py_None && !PyUnicode_Check(literal)) {
        PyErr_SetString(PyExc_TypeError, "literal must be a str or None");
        return -1;
    }
    Py_XSETREF(self->search, Py_NewRef(search));
    Py_XSETREF(self->literal, literal == Py_None ? NULL : Py_NewRef(literal));
    self->literal_ascii = NULL;
    self->literal_len = 0;
    if (self->literal != NULL && PyUnicode_IS_ASCII(self->literal)) {
        self->literal_ascii = (const char *)PyUnicode_1BYTE_DATA(self->literal);
        self->literal_len = PyUnicode_GET_LENGTH(self->literal);
    }
    Py_XSETREF(self->scalar_text, Py_NewRef(scalar));
    Py_XSETREF(self->key_text, Py_NewRef(key));
    Py_XSETREF(self->keys, PyDict_New());
    Py_XSETREF(self->heads, PyDict_New());
    if (self->keys == NULL || self->heads == NULL)
        return -1;
    const char *closes[3] = {NULL, "}", "]"};
    for (int kind = K_DICT; kind <= K_LIST; kind++) {
        PyObject *line = PyUnicode_FromString(closes[kind]);
        if (line == NULL)
            return -1;
        int hit = line_hits(self, line);
        Py_DECREF(line);
        if (hit < 0)
            return -1;
        self->closes[kind] = hit;
    }
    Py_CLEAR(self->state);
    Py_XSETREF(self->node, Py_NewRef(Py_None));
    self->count = 0;
    return 0;
}

static PyObject *
matcher_update(Matcher *self, PyObject *state)
{
    if (state == self->state)
        return PyLong_FromSsize_t(self->count);
    PyObject *node;
    if (self->state == NULL) {
        node = build(self, state);
        if (node == NULL)
            return NULL;
        Py_ssize_t count = weight(self, NULL, state, node);
        if (count < 0) {
            Py_DECREF(node);
            return NULL;
        }
        self->count = count;
    }
    else {
        Py_ssize_t delta = 0;
        if (change(self, NULL, self->state, state, self->node, &delta, &node) < 0)
            return NULL;
        self->count += delta;
    }
    Py_XSETREF(self->node, node);
    Py_XSETREF(self->state, Py_NewRef(state));
    return PyLong_FromSsize_t(self->count);
}

/* observe(state, event, v): whether ``state`` has a matching line (a search's observation,
   replayer.search.GrepProbe.observer, without a Python call in between). */
static PyObject *
matcher_observe(Matcher *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "observe(state, event, v) takes 3 arguments");
        return NULL;
    }
    PyObject *count = matcher_update(self, args[0]);
    if (count == NULL)
        return NULL;
    Py_DECREF(count);
    return PyBool_FromLong(self->count > 0);
}

static int
matcher_traverse(Matcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->search);
    Py_VISIT(self->scalar_text);
    Py_VISIT(self->key_text);
    Py_VISIT(self->state);
    return 0;
}

static int
matcher_clear(Matcher *self)
{
    Py_CLEAR(self->search);
    Py_CLEAR(self->literal);
    Py_CLEAR(self->scalar_text);
    Py_CLEAR(self->key_text);
    Py_CLEAR(self->keys);
    Py_CLEAR(self->heads);
    Py_CLEAR(self->state);
    Py_CLEAR(self->node);
    return 0;
}

static void
matcher_dealloc(Matcher *self)
{
    PyObject_GC_UnTrack(self);
    matcher_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef matcher_methods[] = {
    {"update", (PyCFunction)matcher_update, METH_O,
     "Move to state (from the state before, or from nothing); its matching lines."},
    {"observe", (PyCFunction)(void (*)(void))matcher_observe, METH_FASTCALL,
     "observe(state, event, v): update(state) > 0."},
    {NULL},
};

static PyMemberDef matcher_members[] = {
    {"count", T_PYSSIZET, offsetof(Matcher, count), READONLY, "Matching lines of the latest state."},
    {NULL},
};

static PyTypeObject MatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "replayer._linematch.LineMatches",
    .tp_basicsize = sizeof(Matcher),
    .tp_dealloc = (destructor)matcher_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "LineMatches(search, scalar_text, key_text, literal=None): replayer.grep's walk.",
    .tp_traverse = (traverseproc)matcher_traverse,
    .tp_clear = (inquiry)matcher_clear,
    .tp_methods = matcher_methods,
    .tp_members = matcher_members,
    .tp_init = (initproc)matcher_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "replayer._linematch",
    .m_doc = "The --grep walk of replayer.grep in C (see replayer/_linematch.c).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__linematch(void)
{
    if (PyType_Ready(&NodeType) < 0 || PyType_Ready(&MatcherType) < 0)
        return NULL;
    EMPTY = PyUnicode_FromString("");
    if (!EMPTY)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL)
        return NULL;
    if (PyModule_AddObjectRef(mod, "LineMatches", (PyObject *)&MatcherType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
