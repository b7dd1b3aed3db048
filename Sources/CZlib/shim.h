// zlib (Debian: zlib1g-dev) for IMAP COMPRESS=DEFLATE (RFC 4978).
#include <zlib.h>
