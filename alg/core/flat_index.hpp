// An open-addressing index of small handles (indices or pointers) whose keys live in what
// they name: one slot of sizeof(Handle) per entry and no node, no key copy, no bucket array
// (issue 17, memory per call: a std::unordered_map entry costs a 40-64 byte node plus its
// bucket). Linear probing; an erase shifts the entries after it back (no tombstones); the
// table doubles above 3/4 full and halves below 1/8 (a peak of calls is not kept for good;
// after a halving it is under 1/4 full, so adds and erases at one size do not flap). Handle{} marks an empty slot: no real handle may equal it.
//
// The caller hashes keys (mix_hash) and says which handle matches; `hash_of(handle)` gives a
// stored handle's hash again, for moves at a growth or an erase.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pptp {

// splitmix64's finalizer: the low bits pick the slot, so every input bit must reach them.
inline std::size_t mix_hash(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<std::size_t>(x);
}

template <class Handle>
class FlatIndex {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t allocated_bytes() const { return slots_.capacity() * sizeof(Handle); }
  void clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
  }

  // The first handle on `hash`'s probe path that `match` accepts, else Handle{}.
  template <class Match>
  Handle find(std::size_t hash, Match&& match) const {
    const std::size_t at = slot_of(hash, match);
    return at == kNone ? Handle{} : slots_[at];
  }

  // Adds `h`; an entry that `match` accepts is replaced (at most one per key, as a map's
  // operator[] assignment).
  template <class Match, class HashOf>
  void assign(std::size_t hash, Handle h, Match&& match, HashOf&& hash_of) {
    if (const std::size_t at = slot_of(hash, match); at != kNone) {
      slots_[at] = h;
      return;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) grow(hash_of);
    std::size_t i = hash & mask();
    while (!(slots_[i] == Handle{})) i = (i + 1) & mask();
    slots_[i] = h;
    ++size_;
  }

  // Removes the entry `match` accepts; false if there is none.
  template <class Match, class HashOf>
  bool erase(std::size_t hash, Match&& match, HashOf&& hash_of) {
    std::size_t hole = slot_of(hash, match);
    if (hole == kNone) return false;
    // Entries after the hole whose home is not between it and them move back into it.
    for (std::size_t j = (hole + 1) & mask(); !(slots_[j] == Handle{}); j = (j + 1) & mask()) {
      const std::size_t home = hash_of(slots_[j]) & mask();
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = Handle{};
    --size_;
    if (slots_.size() > kSmallest && size_ * 8 < slots_.size()) rehash(slots_.size() / 2, hash_of);
    return true;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const Handle& h : slots_) {
      if (!(h == Handle{})) f(h);
    }
  }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kSmallest = 16;  // slots of a table that has held an entry
  std::size_t mask() const { return slots_.size() - 1; }

  template <class Match>
  std::size_t slot_of(std::size_t hash, Match& match) const {
    if (slots_.empty()) return kNone;
    for (std::size_t i = hash & mask(); !(slots_[i] == Handle{}); i = (i + 1) & mask()) {
      if (match(slots_[i])) return i;
    }
    return kNone;
  }

  template <class HashOf>
  void grow(HashOf& hash_of) {
    rehash(slots_.empty() ? kSmallest : slots_.size() * 2, hash_of);
  }

  template <class HashOf>
  void rehash(std::size_t slots, HashOf& hash_of) {
    std::vector<Handle> old(slots, Handle{});
    old.swap(slots_);
    for (const Handle& h : old) {
      if (h == Handle{}) continue;
      std::size_t i = hash_of(h) & mask();
      while (!(slots_[i] == Handle{})) i = (i + 1) & mask();
      slots_[i] = h;
    }
  }

  std::vector<Handle> slots_;  // a power of two in size, or empty
  std::size_t size_ = 0;
};

}  // namespace pptp
