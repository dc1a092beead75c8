// Library logging: a process-global sink (stderr by default) and a level filter.
#pragma once

#include "dsabi.h"

namespace ds {

void log_set_sink(ds_log_fn fn, void* user_data, int32_t max_level);
void log_set_level(int32_t max_level);
int32_t log_level();
void log(int32_t level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ds
