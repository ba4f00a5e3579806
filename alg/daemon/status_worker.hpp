// One status write off the event loop, the same steps in both daemons: the loop copies the
// calls' plain values (timed: the loop's share), the worker formats and writes them, frees
// the copy and gives the freed heap back (its cost part of the write's, pacing.hpp), then the
// loop hears the result and the pacing learns the whole cost. Before s32 each daemon wrote
// these steps out itself.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <boost/asio/post.hpp>

#include "alg/daemon/pacing.hpp"

namespace pptp::daemon {

// build() -> Copy, on the loop; write(Copy&) -> std::optional<std::string> (an error), on the
// worker; done(const std::optional<std::string>&), on the loop. Returns the loop's share in
// CPU seconds when a write started (StatusWrites::start), else nothing.
template <class Worker, class Loop, class Build, class Write, class Done>
std::optional<double> write_status_off_loop(StatusWrites& writes, double now, bool to_file, Worker& worker,
                                            Loop& loop, Build build, Write write, Done done) {
  if (!writes.start(now, to_file)) return std::nullopt;
  decltype(build()) copy;
  const double built = cpu_seconds_of([&] { copy = build(); });
  boost::asio::post(worker, [&writes, &loop, copy = std::move(copy), write = std::move(write),
                             done = std::move(done), now, built]() mutable {
    std::optional<std::string> error;
    const double written = cpu_seconds_of([&] {
      error = write(copy);
      copy = {};  // freed before the trim (its blocks are in the loop's arena)
      trim_freed_heap();
    });
    boost::asio::post(loop, [&writes, done = std::move(done), now, built, written, error = std::move(error)] {
      done(error);
      writes.ended(now, built + written);
    });
  });
  return built;
}

// A control request whose answer grows with the calls (`ctl status`, `ctl calls`), the same
// steps in both daemons: make() -> the answer's line without its newline, on the worker from
// a copy the caller took on the loop (its capture, freed there too, and the heap trimmed as
// after a status write); reply(line, false) on the loop, where the reply's connection lives.
// At 65,536 calls the transparent daemon's tree built on the loop held queued packets up to
// 0.6 s (s33 review).
template <class Worker, class Loop, class Reply, class Make>
void answer_off_loop(Worker& worker, Loop& loop, Reply reply, Make make) {
  boost::asio::post(worker, [&loop, reply = std::move(reply), make = std::move(make)]() mutable {
    std::string answer = make() + "\n";
    { const Make spent = std::move(make); }  // the copy freed here, not on the loop
    trim_freed_heap();
    boost::asio::post(loop, [reply = std::move(reply), answer = std::move(answer)]() mutable {
      reply(std::move(answer), false);
    });
  });
}

}  // namespace pptp::daemon
