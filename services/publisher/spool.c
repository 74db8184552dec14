/* The publisher's spool: see spool.h. */
