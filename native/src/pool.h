// A fixed set of worker threads that run the parts of one kernel call. Work is split into a
// number of parts fixed by the caller (never by how many threads happen to run), so results do
// not depend on scheduling: the same parts, combined in the same order, give the same bits
// whether one thread runs them all or several share them. Idle threads block on a condition
// variable (a futex), so a busy machine loses nothing to spinning workers; a part waiting for a
// descheduled worker is the only cost of sharing the cores, and the caller's thread takes every
// part nobody has started.
#pragma once

#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dt {

class Pool {
 public:
  // `threads` >= 1 counts the calling thread: threads - 1 workers are started.
  explicit Pool(int threads);
  ~Pool();
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(i) for i in [0, parts) and returns when all have finished. With `parallel` false (or
  // one thread) the calling thread runs them in order. The first exception a part throws is
  // rethrown here after every part has finished.
  void run(int parts, const std::function<void(int)> &fn, bool parallel = true);

  // Runs every part on the calling thread (tests: the bits must not change).
  void set_serial(bool serial) { serial_ = serial; }

  // Parts run on worker threads since start (a check that the workers really compute).
  long long parts_on_workers() const { return on_workers_.load(); }

 private:
  void worker_loop();
  void take_parts(bool on_worker);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  unsigned long long generation_ = 0;
  bool stop_ = false;
  // The current call (valid while remaining_ > 0).
  const std::function<void(int)> *fn_ = nullptr;
  int parts_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> remaining_{0};
  std::exception_ptr error_;
  std::atomic<long long> on_workers_{0};
  bool serial_ = false;
};

// Splits [0, n) into `parts` contiguous ranges as evenly as possible (the first n % parts get one
// more); part i is [begin, end).
inline void part_range(int64_t n, int parts, int i, int64_t &begin, int64_t &end) {
  int64_t q = n / parts, r = n % parts;
  begin = i * q + (i < r ? i : r);
  end = begin + q + (i < r ? 1 : 0);
}

}  // namespace dt
