// Room in the connection table (tracker.hpp): the dead make room for the living, and the
// unproven for the new.
#include "alg/track/tracker.hpp"

#include <algorithm>

#include "alg/track/tracker_internal.hpp"

namespace pptp::track {

using detail::fmt;

bool Tracker::forget(ClosedEntry entry) {
  closed_.pop_front();
  const auto it = connections_.find(entry.first);
  if (it == connections_.end() || it->second->id != entry.second || it->second->state != ConnectionState::Closed) {
    return false;  // stale: that connection went otherwise
  }
  connections_.erase(it);
  --closed_count_;
  return true;
}

void Tracker::forget_oldest_closed() {
  while (!closed_.empty() && !forget(closed_.front())) {
  }
}

namespace {
// Never answered by a server's Start-Control-Connection-Reply: a SYN's half-open connection,
// one picked up mid-stream (nothing says a server accepted it), one waiting for the reply.
// It carries no call (calls need an established connection).
bool unproven(const ControlConnection& c) {
  return c.state == ConnectionState::TcpOpening || c.state == ConnectionState::WaitStartReply;
}
}  // namespace

bool Tracker::evict_oldest_unproven(double time, Direction dir) {
  while (!unproven_.empty()) {
    const ClosedEntry e = unproven_.front();
    unproven_.pop_front();
    const auto it = connections_.find(e.first);
    if (it == connections_.end() || it->second->id != e.second || !unproven(*it->second)) continue;  // stale
    const ControlConnection& c = *it->second;
    raise(Anomaly::ConnectionEvicted, nullptr, dir,
          fmt("%s -> %s, %s since %.0f s: the table is full (%zu)", wire::to_string(c.pns).c_str(),
              wire::to_string(c.pac).c_str(), std::string(name_of(c.state)).c_str(), time - c.opened_at,
              kMaxControlConnections));
    return release_connection(time, e.first.pns, e.first.pac, "evicted: the table is full");
  }
  return false;
}

bool Tracker::make_room(double time, Direction dir) {
  if (connections_.size() < kMaxControlConnections) {
    // Entries of connections proven or gone since: compacted now and then, so that the
    // queue stays within twice the table.
    if (unproven_.size() > 2 * kMaxControlConnections) {
      std::erase_if(unproven_, [&](const ClosedEntry& e) {
        const auto it = connections_.find(e.first);
        return it == connections_.end() || it->second->id != e.second || !unproven(*it->second);
      });
    }
    return true;
  }
  if (closed_count_ > 0) forget_oldest_closed();
  // A flood of SYNs or of mid-stream segments fills the table with connections no server
  // accepted; a new one takes the place of the oldest of them, so that it has the time of a
  // whole table's worth of flood to be answered (docs/packet-path.md, "A full table").
  if (connections_.size() >= kMaxControlConnections) evict_oldest_unproven(time, dir);
  return connections_.size() < kMaxControlConnections;
}

}  // namespace pptp::track
