// A small result type for the packet path: a value or a typed error, never an exception.
// std::expected would do, but clang 14 (our fuzzing compiler) cannot build libstdc++'s
// <expected>, so the parsers use this instead.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

namespace pptp {

template <class E>
struct Unexpected {
  E error;
};

template <class E>
Unexpected<E> unexpected(E error) {
  return Unexpected<E>{std::move(error)};
}

template <class T, class E>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected<E> error)  // NOLINT: implicit by design
      : storage_(std::in_place_index<1>, std::move(error.error)) {}

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() {
    assert(has_value());
    return std::get<0>(storage_);
  }
  const T& value() const {
    assert(has_value());
    return std::get<0>(storage_);
  }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const {
    assert(!has_value());
    return std::get<1>(storage_);
  }

 private:
  std::variant<T, E> storage_;
};

}  // namespace pptp
