/* The wire contract's examples (schemas/examples/<name>.hex), for checking
 * what the code writes against what the schemas say. */
#ifndef FRESCO_TEST_SCHEMA_EXAMPLE_H
#define FRESCO_TEST_SCHEMA_EXAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* The bytes of schemas/examples/<name>.hex: pairs of hex digits separated
 * by white space, '#' to the end of a line is a comment. Fails the running
 * test when the file is missing or malformed. The caller frees. */
uint8_t *example_load(const char *name, size_t *len);

/* Fails the running test, showing the first differing byte, unless
 * [got, got + n) equals the example's bytes. */
void example_assert_equal(const char *name, const void *got, size_t n);

#endif
