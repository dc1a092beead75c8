// dsabi.h must compile alone as C++17 (-Wall -Wextra -Werror -pedantic).
#include "dsabi.h"

int dsabi_header_cxx_probe();
int dsabi_header_cxx_probe() { return DS_OK + DS_ABI_VERSION; }
