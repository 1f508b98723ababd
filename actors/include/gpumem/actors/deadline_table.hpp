#pragma once
// The deadlines of the requests an actor waits for, kept by the actor itself.
//
// CAF 0.17 arms an entry in its shared actor clock for every request sent with a
// timeout and cancels it when the reply comes; each costs a mutex and a wake-up of the
// clock's thread, and together they took most of a balancer round trip. Requests sent
// with caf::infinite and entered here cost a push and a flag; one sweep message per
// period fails the overdue ones. A reply that comes after its deadline finds its entry
// closed (settle() is false), so the caller can undo what the late reply did.
//
// Entries expire in the order they were added: callers give every entry the same
// timeout, so deadlines never decrease along the table.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>

namespace gpumem::actors {

class deadline_table {
public:
  using clock = std::chrono::steady_clock;
  using ticket = std::uint64_t;

  /// Waits for one reply until `deadline`; `on_expiry` runs if none came by then.
  ticket add(clock::time_point deadline, std::function<void()> on_expiry);

  /// The reply for `t` came: true if it is on time (its entry was open; now closed),
  /// false if its deadline had passed and on_expiry already ran.
  bool settle(ticket t);

  /// Runs on_expiry of every entry whose deadline is <= now; returns how many.
  /// on_expiry may add entries.
  std::size_t expire(clock::time_point now);

  /// Runs on_expiry of every open entry, due or not (the owner is going away).
  std::size_t expire_all();

  /// Entries still waiting for their reply.
  std::size_t open() const noexcept { return open_; }

private:
  struct entry {
    clock::time_point deadline;
    std::function<void()> on_expiry;
    bool open = true;
  };
  void drop_closed_front();

  std::deque<entry> entries_;
  ticket first_ = 0;  // the ticket of entries_.front()
  std::size_t open_ = 0;
};

} // namespace gpumem::actors
