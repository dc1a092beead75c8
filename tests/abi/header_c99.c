/* dsabi.h must compile alone as strict C99 (-std=c99 -Wall -Wextra -Werror -pedantic). */
#include "dsabi.h"

int dsabi_header_c99_probe(void);
int dsabi_header_c99_probe(void) { return DS_OK + DS_ABI_VERSION; }
