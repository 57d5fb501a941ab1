#pragma once
#include "pool.h"

namespace dt {
// The pool and the part count set by init() (dnnl_ops.cc).
Pool &shared_pool();
int shared_parts();
// Element counts below which a loop runs on the calling thread alone.
constexpr long long kParallelElements = 1 << 16;
}  // namespace dt
