#include "pool.h"

#include <omp.h>

namespace dt {

Pool::Pool(int threads) {
  for (int i = 1; i < threads; i++) workers_.emplace_back([this] { worker_loop(); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto &t : workers_) t.join();
}

void Pool::take_parts(bool on_worker) {
  for (;;) {
    int i = next_.fetch_add(1);
    if (i >= parts_) return;
    try {
      (*fn_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (on_worker) on_workers_.fetch_add(1);
    if (remaining_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_all();
    }
  }
}

void Pool::worker_loop() {
  // oneDNN (OpenMP build) must not start teams of its own inside a part: every primitive runs on
  // the thread that executes it.
  omp_set_num_threads(1);
  unsigned long long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    take_parts(true);
  }
}

void Pool::run(int parts, const std::function<void(int)> &fn, bool parallel) {
  if (parts <= 0) return;
  if (!parallel || serial_ || workers_.empty() || parts == 1) {
    for (int i = 0; i < parts; i++) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    parts_ = parts;
    next_.store(0);
    remaining_.store(parts);
    error_ = nullptr;
    generation_++;
  }
  wake_.notify_all();
  take_parts(false);
  std::exception_ptr err;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return remaining_.load() == 0; });
    err = error_;
    error_ = nullptr;
    fn_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace dt
