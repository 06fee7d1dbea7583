// Small RAII helpers for the core's re-entrancy flags and clean-ups: whatever way a scope is
// left (a return or an exception), the flag is cleared and the clean-up runs, so a flag such as
// "this queue is dispatching" can never stay set and wedge its owner.
#pragma once

#include <utility>

namespace warren::broker {

// Sets `flag` for the life of the guard. Use it for every "already inside" flag.
class FlagGuard {
public:
    explicit FlagGuard(bool& flag) : flag_(flag) { flag_ = true; }
    ~FlagGuard() { flag_ = false; }
    FlagGuard(const FlagGuard&) = delete;
    FlagGuard& operator=(const FlagGuard&) = delete;

private:
    bool& flag_;
};

// Runs `f` when the scope ends. `f` must not throw (it runs during unwinding too).
template <class F>
class ScopeExit {
public:
    explicit ScopeExit(F f) : f_(std::move(f)) {}
    ~ScopeExit() { f_(); }
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;

private:
    F f_;
};

}  // namespace warren::broker
