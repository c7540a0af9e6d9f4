/* The fast way of reading a YAML file: libyaml's event parser building plain Python values directly.
 *
 * read(data, take, run, resolve, notes) parses the UTF-8 bytes *data* once and returns the document's
 * mapping as plain dicts, lists, str, int, bool, None and datetime.date, or None when the file must be
 * read the located way (akm.yamlsource.load_yaml), which is the reference. It declines, at the first
 * sight of it, anything whose meaning or problems only the located reading decides: a syntax error, a
 * tag, an anchor or alias (so no alias bomb is ever expanded here), a merge key, a duplicate key, a key
 * that is not text, a second document, a document that is not a mapping, a nesting deeper than
 * MAX_DEPTH. A whole number written in octal or base 60 is kept as the text written, as the located
 * reading keeps it, and noted in the list *notes* as (kind, value YAML made, text, line, field) for the
 * problem the located reading reports; with *notes* None the file is declined instead.
 *
 * Plain scalars are resolved as YAML 1.1 (PyYAML's resolver) does. The common forms are decided here:
 * text whose first character no resolver looks at, the booleans and nulls, whole decimal numbers, dates
 * (YYYY-MM-DD), and text that cannot be a number or a time (two dots, a character no number has). Any
 * other plain scalar is handed to *resolve*, which returns its value, a tuple (value, kind) for a number
 * in octal or base 60, or *resolve* itself to decline.
 *
 * The items of each list at the top of the document (a section such as assets:) are handed to *take*
 * (the section's name, the index of the first of them, a list of them) every *run* items, as soon as
 * they are read; what it returns stands for them in the data, so the plain items of a large file are
 * never all held at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    PyObject *container; /* dict or list */
    PyObject *key;       /* the key whose value comes next in a mapping, or NULL */
    int is_map;
    PyObject *section;   /* a top-level list: its section's name; NULL otherwise */
    PyObject *run;       /* its items not yet given to take */
    Py_ssize_t start;    /* the index in the section of run's first item */
} Frame;

/* Short texts recently made, by a hash of their bytes: the keys and the many values written alike (kind,
 * status, department) are then one object each, not one per record. */
/* Deeper than the nesting libyaml allows in PyYAML's build (a syntax error there), and than any inventory
 * needs: the located reading decides. */
#define MAX_DEPTH 1000

#define CACHE_SLOTS 4096
#define CACHE_LENGTH 48

typedef struct {
    Frame *frames;
    Py_ssize_t depth, size;
    PyObject *take, *resolve, *notes;
    Py_ssize_t run;
    size_t line; /* of the scalar being read, from 1 */
    PyObject *cache[CACHE_SLOTS];
} State;

/* What a step returns: go on, decline the file (None), or a Python error is set. */
enum { OK = 0, DECLINE = 1, FAILED = -1 };

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int word_in(const char *s, size_t n, const char *const *words) {
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0) return 1;
    return 0;
}

static const char *const TRUE_WORDS[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
static const char *const FALSE_WORDS[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const NULL_WORDS[] = {"~", "null", "Null", "NULL", NULL};

/* A whole decimal number as YAML 1.1 reads it ([-+]?(0|[1-9][0-9_]*)), of at most 18 digits: 1 and its
 * value in *out*; 0 if it is not one. */
static int decimal(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int negative = 0, digits = 0;
    long long value = 0;
    if (n && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        i = 1;
    }
    if (i >= n) return 0;
    if (s[i] == '0') {
        if (i + 1 != n) return 0;
        *out = 0;
        return 1;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    for (; i < n; i++) {
        if (s[i] == '_') continue;
        if (!is_digit(s[i]) || ++digits > 18) return 0;
        value = value * 10 + (s[i] - '0');
    }
    *out = negative ? -value : value;
    return 1;
}

/* Whether no resolver of a number or a time can read *s*: two dots, or a character none of them has. */
static int not_a_number(const char *s, size_t n) {
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (++dots > 1) return 1;
        } else if (!(is_digit(c) || strchr("_:+-xXabcdefABCDEFiInNtTZ \t", c))) {
            return 1;
        }
    }
    return 0;
}

static PyObject *decoded(const char *s, size_t n) { return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict"); }

/* The text of the UTF-8 bytes *s*: the same object as last time for a short ASCII text met again. */
static PyObject *text(State *state, const char *s, size_t n) {
    if (n > CACHE_LENGTH) return decoded(s, n);
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < n; i++) hash = (hash ^ (unsigned char)s[i]) * 16777619u;
    PyObject **slot = &state->cache[hash & (CACHE_SLOTS - 1)];
    PyObject *hit = *slot;
    if (hit && PyUnicode_IS_COMPACT_ASCII(hit) && (size_t)PyUnicode_GET_LENGTH(hit) == n &&
        memcmp(PyUnicode_DATA(hit), s, n) == 0)
        return Py_NewRef(hit);
    PyObject *made = decoded(s, n);
    if (made) Py_XSETREF(*slot, Py_NewRef(made));
    return made;
}

/* The field being read, from the top of the file, as the located reading names it: segments[0].vlan. */
static PyObject *path(State *state) {
    PyObject *parts = PyList_New(0);
    if (!parts) return NULL;
    for (Py_ssize_t k = 0; k < state->depth; k++) {
        Frame *frame = &state->frames[k];
        PyObject *part;
        if (!frame->is_map) {
            Py_ssize_t index = PyList_GET_SIZE(frame->container) + (frame->run ? PyList_GET_SIZE(frame->run) : 0);
            part = PyUnicode_FromFormat("[%zd]", index);
        } else if (frame->key == NULL) {
            break;
        } else {
            part = PyUnicode_FromFormat(PyList_GET_SIZE(parts) ? ".%U" : "%U", frame->key);
        }
        if (!part || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(part);
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *joined = empty ? PyUnicode_Join(empty, parts) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(parts);
    return joined;
}

/* The value of a plain scalar; *declined* set if the file is to be read located. */
static PyObject *plain(State *state, const char *s, size_t n, int *declined) {
    if (n == 0) Py_RETURN_NONE;
    switch (s[0]) {
    case 'y': case 'Y': case 'n': case 'N': case 't': case 'T': case 'f': case 'F': case 'o': case 'O':
        if (word_in(s, n, TRUE_WORDS)) Py_RETURN_TRUE;
        if (word_in(s, n, FALSE_WORDS)) Py_RETURN_FALSE;
        if (word_in(s, n, NULL_WORDS)) Py_RETURN_NONE;
        return text(state, s, n);
    case '~':
        if (n == 1) Py_RETURN_NONE;
        return text(state, s, n);
    case '<':
        if (n == 2 && s[1] == '<') {
            *declined = 1;
            return NULL;
        }
        return text(state, s, n);
    case '=': case '!': case '&': case '*': /* the value and yaml tags: decided located */
        if (n == 1) {
            *declined = 1;
            return NULL;
        }
        return text(state, s, n);
    case '-': case '+': case '.':
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': {
        long long number;
        if (decimal(s, n, &number)) return PyLong_FromLongLong(number);
        if (n == 10 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) && s[4] == '-' &&
            is_digit(s[5]) && is_digit(s[6]) && s[7] == '-' && is_digit(s[8]) && is_digit(s[9])) {
            int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
            int month = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
            PyObject *date = PyDate_FromDate(year, month, day);
            if (date || !PyErr_ExceptionMatches(PyExc_ValueError)) return date;
            PyErr_Clear(); /* an impossible date stays text, as in the located reading */
            return text(state, s, n);
        }
        if (not_a_number(s, n)) return text(state, s, n);
        PyObject *written = text(state, s, n);
        if (!written) return NULL;
        PyObject *value = PyObject_CallOneArg(state->resolve, written);
        if (value == state->resolve) {
            Py_DECREF(value);
            Py_DECREF(written);
            *declined = 1;
            return NULL;
        }
        if (value && PyTuple_CheckExact(value)) {
            /* (value, kind): a number in octal or base 60, kept as the text written and noted */
            if (state->notes == Py_None) {
                *declined = 1;
                Py_CLEAR(value);
            } else {
                PyObject *at = path(state);
                PyObject *note = at ? Py_BuildValue("(OOOnO)", PyTuple_GET_ITEM(value, 1), PyTuple_GET_ITEM(value, 0),
                                                    written, (Py_ssize_t)state->line, at)
                                    : NULL;
                Py_XDECREF(at);
                Py_SETREF(value, note && PyList_Append(state->notes, note) == 0 ? Py_NewRef(written) : NULL);
                Py_XDECREF(note);
            }
        }
        Py_DECREF(written);
        return value;
    }
    default:
        return text(state, s, n);
    }
}

static void clear_frame(Frame *frame) {
    Py_CLEAR(frame->container);
    Py_CLEAR(frame->key);
    Py_CLEAR(frame->section);
    Py_CLEAR(frame->run);
}

/* Give the items of the run of *frame* to take; what it returns joins the section's list. */
static int flush(State *state, Frame *frame) {
    Py_ssize_t count = PyList_GET_SIZE(frame->run);
    if (count == 0) return OK;
    PyObject *start = PyLong_FromSsize_t(frame->start);
    if (!start) return FAILED;
    PyObject *taken = PyObject_CallFunctionObjArgs(state->take, frame->section, start, frame->run, NULL);
    Py_DECREF(start);
    if (!taken) return FAILED;
    int done = PyList_SetSlice(frame->container, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, taken);
    Py_DECREF(taken);
    if (done < 0) return FAILED;
    frame->start += count;
    Py_SETREF(frame->run, PyList_New(0));
    return frame->run ? OK : FAILED;
}

/* Put *value* (a new reference, always consumed) into the innermost open container. */
static int add(State *state, PyObject *value) {
    Frame *top = &state->frames[state->depth - 1];
    int result = OK;
    if (!top->is_map) {
        PyObject *into = top->run ? top->run : top->container;
        if (PyList_Append(into, value) < 0) result = FAILED;
        else if (top->run && PyList_GET_SIZE(top->run) >= state->run) result = flush(state, top);
        Py_DECREF(value);
        return result;
    }
    if (top->key == NULL) {
        if (!PyUnicode_CheckExact(value)) {
            Py_DECREF(value);
            return DECLINE;
        }
        PyUnicode_InternInPlace(&value);
        int found = PyDict_Contains(top->container, value);
        if (found != 0) {
            Py_DECREF(value);
            return found < 0 ? FAILED : DECLINE;
        }
        top->key = value;
        return OK;
    }
    if (PyDict_SetItem(top->container, top->key, value) < 0) result = FAILED;
    Py_CLEAR(top->key);
    Py_DECREF(value);
    return result;
}

static int push(State *state, PyObject *container, int is_map) {
    if (!container) return FAILED;
    if (state->depth >= MAX_DEPTH) {
        Py_DECREF(container);
        return DECLINE;
    }
    if (state->depth == state->size) {
        Py_ssize_t size = state->size ? state->size * 2 : 16;
        Frame *frames = PyMem_Realloc(state->frames, (size_t)size * sizeof(Frame));
        if (!frames) {
            Py_DECREF(container);
            PyErr_NoMemory();
            return FAILED;
        }
        state->frames = frames;
        state->size = size;
    }
    Frame *frame = &state->frames[state->depth];
    memset(frame, 0, sizeof(Frame));
    frame->container = container;
    frame->is_map = is_map;
    if (!is_map && state->depth == 1 && state->frames[0].key) {
        frame->section = Py_NewRef(state->frames[0].key);
        frame->run = PyList_New(0);
        state->depth++;
        return frame->run ? OK : FAILED;
    }
    state->depth++;
    return OK;
}

/* One event: OK, DECLINE, FAILED; *root* gets the document's value when its last container ends. */
static int step(State *state, yaml_event_t *event, int *documents, PyObject **root) {
    PyObject *value;
    switch (event->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return OK;
    case YAML_DOCUMENT_START_EVENT:
        return ++*documents > 1 ? DECLINE : OK;
    case YAML_ALIAS_EVENT:
        return DECLINE;
    case YAML_MAPPING_START_EVENT:
        if (event->data.mapping_start.anchor || event->data.mapping_start.tag) return DECLINE;
        return push(state, PyDict_New(), 1);
    case YAML_SEQUENCE_START_EVENT:
        if (event->data.sequence_start.anchor || event->data.sequence_start.tag) return DECLINE;
        return push(state, PyList_New(0), 0);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: {
        Frame *frame = &state->frames[state->depth - 1];
        if (frame->run && flush(state, frame) < 0) return FAILED;
        value = Py_NewRef(frame->container);
        clear_frame(frame);
        state->depth--;
        if (state->depth == 0) {
            if (!PyDict_CheckExact(value)) {
                Py_DECREF(value);
                return DECLINE;
            }
            *root = value;
            return OK;
        }
        return add(state, value);
    }
    case YAML_SCALAR_EVENT: {
        const char *s = (const char *)event->data.scalar.value;
        size_t n = event->data.scalar.length;
        if (event->data.scalar.anchor || event->data.scalar.tag) return DECLINE;
        if (state->depth == 0) return DECLINE; /* a document that is a single value */
        if (event->data.scalar.plain_implicit) {
            int declined = 0;
            state->line = event->start_mark.line + 1;
            value = plain(state, s, n, &declined);
            if (declined) return DECLINE;
        } else {
            value = text(state, s, n);
        }
        if (!value) return FAILED;
        return add(state, value);
    }
    default:
        return DECLINE;
    }
}

static PyObject *read_yaml(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer data;
    State state = {0};
    if (!PyArg_ParseTuple(args, "y*OnOO", &data, &state.take, &state.run, &state.resolve, &state.notes)) return NULL;
    if (state.run < 1) state.run = 1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    yaml_parser_set_input_string(&parser, data.buf, (size_t)data.len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    PyObject *root = NULL;
    int documents = 0, result = OK, done = 0;
    while (result == OK && !done) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            result = DECLINE;
            break;
        }
        done = event.type == YAML_STREAM_END_EVENT;
        result = step(&state, &event, &documents, &root);
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    PyBuffer_Release(&data);
    for (Py_ssize_t k = 0; k < state.depth; k++) clear_frame(&state.frames[k]);
    PyMem_Free(state.frames);
    for (size_t k = 0; k < CACHE_SLOTS; k++) Py_XDECREF(state.cache[k]);
    if (result == FAILED) {
        Py_XDECREF(root);
        return NULL;
    }
    if (result == DECLINE || root == NULL) {
        Py_XDECREF(root);
        Py_RETURN_NONE;
    }
    return root;
}

static PyMethodDef methods[] = {
    {"read", read_yaml, METH_VARARGS,
     "read(data, take, run, resolve, notes): the plain data of a YAML file, or None if it must be read located."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_yamlplain", "The fast way of reading YAML: libyaml's events made into plain values.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__yamlplain(void) {
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI) return NULL;
    return PyModule_Create(&module);
}
