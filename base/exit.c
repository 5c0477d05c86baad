#include "base/exit.h"

const char *
rv_exit_text(int code)
{
    switch (code) {
#define RV_EXIT_CASE(name, value, text) \
    case value:                         \
        return text;
        RV_EXIT_MAP(RV_EXIT_CASE)
#undef RV_EXIT_CASE
    default:
        return "unknown exit code";
    }
}
