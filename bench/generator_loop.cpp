// The load generator's event loop and its roles. A control connection declares the queues
// (and the fan-out exchange) and deletes them at the end; producers publish pre-encoded
// messages stamped with the send time (batched, or a send each in client mode); consumers parse
// deliveries in place, ack them and record the latency. Each loop runs on one thread and owns
// its connections and counters (plain integers); only the Coordinator is shared.
#include "bench/generator_loop.hpp"

#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/connection.hpp"
#include "bench/proc_stat.hpp"
#include "protocol/basic_properties.hpp"
#include "protocol/field_table.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/methods.hpp"

namespace warren::bench {

namespace {

using namespace warren::protocol;

constexpr std::size_t max_batch_bytes = 256 * 1024;  // one producer's output per loop turn
constexpr std::uint64_t max_batch_messages = 1000;
constexpr int max_concurrent_handshakes = 64;  // brokers' listen backlogs are small
constexpr std::uint64_t ns_per_s = 1'000'000'000;
constexpr std::uint64_t setup_timeout_ns = 120 * ns_per_s;
constexpr std::uint64_t close_timeout_ns = 10 * ns_per_s;
constexpr std::uint64_t max_wait_ns = 100'000'000;
constexpr std::uint64_t coordination_poll_ns = 1'000'000;  // waiting for the other threads
// A fixed-rate producer wakes at most this often and sends what is due (5 messages at 100 k/s):
// a wakeup per message would cost the generator more CPU than the broker it measures.
constexpr std::uint64_t min_pacing_ns = 50'000;

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

std::uint64_t seconds_to_ns(double s) {
    return static_cast<std::uint64_t>(s * 1e9);
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto secs = [](timeval tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6; };
    return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Which publishes the broker has confirmed. Tags are settled individually or as a prefix
// (multiple); a ring of bits covers the window above the settled prefix.
class ConfirmWindow {
public:
    void reset(std::uint32_t window) {
        bits_.assign(std::bit_ceil(std::size_t{window} + 1), 0);
        low_ = 0;
        above_ = 0;
    }
    std::uint64_t settled() const { return low_ + above_; }

    // Returns how many tags this ack (or nack) settled.
    std::uint64_t settle(std::uint64_t tag, bool multiple) {
        std::uint64_t before = settled();
        if (multiple) {
            while (low_ < tag) {
                ++low_;
                if (std::exchange(bit(low_), 0)) --above_;
            }
        } else if (tag > low_ && !bit(tag)) {
            bit(tag) = 1;
            ++above_;
            while (above_ > 0 && bit(low_ + 1)) {
                ++low_;
                bit(low_) = 0;
                --above_;
            }
        }
        return settled() - before;
    }

private:
    std::uint8_t& bit(std::uint64_t tag) { return bits_[tag & (bits_.size() - 1)]; }
    std::vector<std::uint8_t> bits_;
    std::uint64_t low_ = 0;    // every tag <= low_ is settled
    std::uint64_t above_ = 0;  // settled tags above low_
};

enum class Role { Control, Producer, Consumer, Idle };

// Producers and the consumers of the queues they feed. The backlog bound is per flow.
struct Flow {
    std::uint64_t published = 0;
    std::uint64_t consumed = 0;
    std::uint32_t copies = 1;  // deliveries per publish
    bool bounded = false;      // has consumers
    bool owned = false;        // this thread drives it

    std::int64_t backlog() const {
        return static_cast<std::int64_t>(published * copies) - static_cast<std::int64_t>(consumed);
    }
};

struct Client {
    Role role = Role::Idle;
    int index = 0;
    Connection conn;
    Flow* flow = nullptr;
    std::string exchange;     // producer: where it publishes
    std::string queue;        // producer: the routing key; consumer: the queue it consumes
    int pending_replies = 0;  // declare-ok, qos-ok, consume-ok, select-ok still to come
    bool ready = false;

    // Producer.
    ByteBuffer message;        // one whole publish: method, header and body frames
    std::size_t stamp_at = 0;  // where the send time goes in `message`; 0: body too short
    std::uint64_t batch = 1;   // messages per loop turn
    std::uint64_t sent = 0;
    std::uint64_t quota = 0;  // when the scenario counts messages
    std::uint64_t rate_sent = 0;
    std::uint64_t wake_at = UINT64_MAX;  // when the rate allows the next publish, if only the rate holds it
    std::uint64_t last_send = 0;
    ConfirmWindow confirms;
    std::uint64_t nacked = 0;

    // Producer, delayed scenarios: where the x-delay header's value goes in `message`.
    std::size_t delay_at = 0;

    // Consumer: the delivery being received.
    std::uint64_t delivery_tag = 0;
    std::uint64_t body_left = 0;
    std::uint64_t stamp = 0;
    std::uint32_t delay_ms = 0;  // delayed scenarios: the delay it was published with
    bool has_stamp = false;
    bool in_delivery = false;
    std::uint32_t unacked = 0;
};

class GeneratorLoop {
public:
    GeneratorLoop(const Scenario& scenario, const Target& target, Coordinator& coordinator, int index);
    ~GeneratorLoop();
    GeneratorLoop(const GeneratorLoop&) = delete;
    GeneratorLoop& operator=(const GeneratorLoop&) = delete;
    Result run();
    const Histogram& latency() const { return latency_; }
    int owned_flows() const {
        return static_cast<int>(std::count_if(flows_.begin(), flows_.end(), [](const Flow& f) { return f.owned; }));
    }

private:
    enum class Phase { Connecting, Declaring, Preparing, Running, Settling, Closing, Deleting, Done };

    struct Snapshot {
        std::uint64_t time = 0;
        std::uint64_t published = 0, consumed = 0, confirmed = 0, nacked = 0;
        double cpu = 0;
        std::optional<double> broker_cpu;
        std::vector<std::uint64_t> flow_consumed;
    };

    void build_topology();
    bool owns_queue(int q) const { return q % coordinator_.threads == index_; }
    void advance(std::uint64_t now);
    void start_pending();
    void abort(std::string error);
    void handle_event(Client& c, std::uint32_t events);
    void on_open(Client& c);
    void on_frame(Client& c, const Frame& frame);
    void on_consumer_frame(Client& c, const Frame& frame);
    void on_delivery(Client& c);
    void on_method(Client& c, const Frame& frame);
    bool pump(Client& p, std::uint64_t now);
    void encode_message(Client& p);
    std::uint64_t next_wakeup(std::uint64_t now) const;
    Snapshot snapshot(std::uint64_t now) const;
    std::int64_t backlog() const;
    void begin_measure(std::uint64_t now);
    void end_measure(std::uint64_t now);
    void send_deletes();

    Scenario s_;
    Target target_;
    Coordinator& coordinator_;
    int index_;  // this thread's number; 0 has the control connection
    Result result_;
    int epoll_fd_ = -1;
    Phase phase_ = Phase::Connecting;
    std::vector<Flow> flows_;
    std::vector<std::string> queue_names_;
    ByteBuffer queue_args_;     // queue.declare's arguments, encoded once
    ByteBuffer consumer_args_;  // basic.consume's
    std::string fanout_exchange_;
    std::string delayed_exchange_;  // delayed scenarios
    std::mt19937 delays_{12345};    // the same sequence of delays on every run
    std::uint64_t next_rss_sample_ = 0;
    std::unique_ptr<Client> control_;               // thread 0 only
    std::vector<std::unique_ptr<Client>> clients_;  // producers, consumers, idle connections
    std::vector<Client*> producers_;
    std::size_t next_start_ = 0;
    bool counted_ready_ = false;
    bool counted_closed_ = false;
    bool deletes_sent_ = false;

    bool publishing_ = false;
    bool measuring_ = false;
    std::uint64_t deadline_ = 0;  // of the current phase
    std::uint64_t run_start_ = 0;
    Snapshot begin_, end_;
    Histogram latency_;
};

GeneratorLoop::GeneratorLoop(const Scenario& scenario, const Target& target, Coordinator& coordinator, int index)
    : s_(scenario), target_(target), coordinator_(coordinator), index_(index) {
    result_.scenario = scenario;
    result_.threads = coordinator.threads;
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (s_.prefetch > 0) s_.multi_ack = std::min<std::uint32_t>(s_.multi_ack, s_.prefetch);  // else it stalls
    s_.multi_ack = std::max<std::uint32_t>(s_.multi_ack, 1);
    build_topology();
}

GeneratorLoop::~GeneratorLoop() {
    clients_.clear();
    control_.reset();
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void GeneratorLoop::build_topology() {
    std::string prefix = fmt::format("warren-bench-{}-{}", ::getpid(), s_.name);
    for (int q = 0; q < s_.queues; ++q)
        queue_names_.push_back(s_.queue_name.empty() || q > 0 ? fmt::format("{}-{}", prefix, q) : s_.queue_name);
    result_.queues = queue_names_;
    if (s_.fanout) fanout_exchange_ = prefix + "-fanout";
    FieldTable args;
    for (const auto& [key, value] : s_.queue_args) args.set(key, value);
    queue_args_ = encode_table_body(args);
    FieldTable consumer_args;
    for (const auto& [key, value] : s_.consumer_args) consumer_args.set(key, value);
    consumer_args_ = encode_table_body(consumer_args);
    if (s_.max_delay_ms > 0) delayed_exchange_ = prefix + "-delayed";

    flows_.resize(static_cast<std::size_t>(std::max(s_.flows(), 1)));
    for (std::size_t i = 0; i < flows_.size(); ++i) {
        Flow& f = flows_[i];
        f.copies = s_.fanout ? static_cast<std::uint32_t>(s_.queues) : 1;
        if (s_.stream()) f.copies *= static_cast<std::uint32_t>(std::max(s_.consumers, 1));  // each reads all
        f.bounded = s_.consumers > 0 && s_.max_delay_ms == 0;    // delayed messages pile up by design
        f.owned = s_.fanout || owns_queue(static_cast<int>(i));  // a fan-out runs on one thread
    }
    if (index_ == 0) {
        control_ = std::make_unique<Client>();
        control_->role = Role::Control;
    }

    auto add = [&](Role role, int index) -> Client& {
        auto c = std::make_unique<Client>();
        c->role = role;
        c->index = index;
        if (s_.mode == LoadMode::Client) c->conn.set_client_like();
        clients_.push_back(std::move(c));
        return *clients_.back();
    };
    // Consumers first, so that they subscribe before the first publish.
    for (int q = 0; q < s_.queues; ++q) {
        if (!s_.fanout && !owns_queue(q)) continue;
        for (int i = 0; i < s_.consumers; ++i) {
            Client& c = add(Role::Consumer, q * s_.consumers + i);
            c.queue = queue_names_[static_cast<std::size_t>(q)];
            c.flow = &flows_[s_.fanout ? 0 : static_cast<std::size_t>(q)];
        }
    }
    for (int i = 0; i < s_.producers; ++i) {
        std::size_t q = s_.queues > 0 ? static_cast<std::size_t>(i % s_.queues) : 0;
        if (!s_.fanout && !owns_queue(static_cast<int>(q))) continue;
        Client& p = add(Role::Producer, i);
        p.flow = &flows_[s_.fanout ? 0 : q];
        p.exchange = s_.max_delay_ms > 0 ? delayed_exchange_ : fanout_exchange_;
        p.queue = s_.fanout || s_.queues == 0 ? std::string() : queue_names_[q];
        if (s_.messages > 0) {
            p.quota = s_.messages / static_cast<std::uint64_t>(s_.producers) +
                      (static_cast<std::uint64_t>(i) < s_.messages % static_cast<std::uint64_t>(s_.producers) ? 1 : 0);
        }
        producers_.push_back(&p);
    }
    for (int i = 0; i < s_.idle_connections; ++i) {
        if (i % coordinator_.threads == index_) add(Role::Idle, i);
    }
    result_.connections = static_cast<int>(clients_.size()) + (control_ ? 1 : 0);
}

Result GeneratorLoop::run() {
    if (epoll_fd_ < 0) {
        result_.error = fmt::format("epoll_create1: {}", std::strerror(errno));
        return result_;
    }
    deadline_ = now_ns() + setup_timeout_ns;
    if (control_) {
        if (target_.broker_pid > 0) result_.rss_before_kib = read_rss_kib(target_.broker_pid);
        control_->conn.start(epoll_fd_, target_.address, control_.get());
    } else {
        phase_ = Phase::Preparing;  // its connections start once thread 0 has declared the queues
    }

    std::vector<epoll_event> events(256);
    while (phase_ != Phase::Done) {
        std::uint64_t now = now_ns();
        if (interrupted && phase_ < Phase::Closing) abort("interrupted");
        if (coordinator_.failed && phase_ < Phase::Closing) abort(std::string(other_thread_failed));
        advance(now);
        if (phase_ == Phase::Done) break;
        start_pending();
        bool busy = false;
        if (publishing_) {
            for (Client* p : producers_) busy |= pump(*p, now);
        }
        std::uint64_t wait = busy ? 0 : next_wakeup(now) - now;
        timespec ts{static_cast<time_t>(wait / ns_per_s), static_cast<long>(wait % ns_per_s)};
        int n = ::epoll_pwait2(epoll_fd_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
        if (n < 0 && errno != EINTR) {
            result_.error = fmt::format("epoll_pwait2: {}", std::strerror(errno));
            coordinator_.failed = true;
            break;
        }
        for (int i = 0; i < n; ++i)
            handle_event(*static_cast<Client*>(events[static_cast<std::size_t>(i)].data.ptr),
                         events[static_cast<std::size_t>(i)].events);
    }
    return result_;
}

void GeneratorLoop::abort(std::string error) {
    if (result_.error.empty()) result_.error = std::move(error);
    coordinator_.failed = true;
    if (measuring_) end_measure(now_ns());
    publishing_ = false;
    if (phase_ < Phase::Closing) {
        phase_ = Phase::Settling;
        deadline_ = 0;  // straight on to closing
    }
}

// The phase machine; each phase ends on a condition or at its deadline.
void GeneratorLoop::advance(std::uint64_t now) {
    switch (phase_) {
        case Phase::Connecting:
        case Phase::Declaring:
        case Phase::Preparing:
            if (now >= deadline_) {
                abort("setup timed out (connections, declarations or subscriptions)");
                return advance(now);
            }
            if (phase_ == Phase::Declaring && control_->pending_replies == 0) {
                phase_ = Phase::Preparing;
                coordinator_.declared = true;
            }
            if (phase_ == Phase::Preparing && !counted_ready_ && coordinator_.declared &&
                next_start_ == clients_.size() &&
                std::all_of(clients_.begin(), clients_.end(), [](const auto& c) { return c->ready; })) {
                counted_ready_ = true;
                ++coordinator_.ready;
            }
            // Every thread starts publishing at the same time, and measures the same window.
            if (phase_ == Phase::Preparing && coordinator_.ready == coordinator_.threads) {
                std::uint64_t unset = 0;
                coordinator_.run_start.compare_exchange_strong(unset, now);
                phase_ = Phase::Running;
                run_start_ = coordinator_.run_start;
                publishing_ = true;
                if (s_.messages > 0 || s_.warmup <= 0) begin_measure(now);
                deadline_ = s_.messages > 0
                                ? now + seconds_to_ns(s_.count_timeout)
                                : run_start_ + seconds_to_ns(std::max(s_.warmup, 0.0)) + seconds_to_ns(s_.duration);
            }
            break;
        case Phase::Running: {
            bool done = false;
            if (s_.max_delay_ms > 0 && control_ && target_.broker_pid > 0 && now >= next_rss_sample_) {
                next_rss_sample_ = now + 100'000'000;
                if (auto rss = read_rss_kib(target_.broker_pid))
                    result_.rss_peak_kib = std::max(result_.rss_peak_kib.value_or(0), *rss);
            }
            if (producers_.empty() && s_.messages > 0 && s_.consumers > 0) {
                // Reading what is there: done once every consumer has had its count.
                if (now >= deadline_) {
                    abort("timed out reading the scenario's messages");
                    return advance(now);
                }
                done = std::all_of(flows_.begin(), flows_.end(),
                                   [&](const Flow& f) { return !f.owned || f.consumed >= s_.messages * f.copies; });
            } else if (producers_.empty()) {
                done = true;
            } else if (s_.messages > 0) {
                if (now >= deadline_) {
                    abort("timed out publishing the scenario's messages and awaiting their confirms");
                    return advance(now);
                }
                done = std::all_of(producers_.begin(), producers_.end(), [&](const Client* p) {
                    return p->sent == p->quota && (s_.confirm == 0 || p->confirms.settled() == p->sent);
                });
                // Delayed: done once every message has come out of the exchange to a consumer.
                if (done && s_.max_delay_ms > 0 && s_.consumers > 0)
                    done = std::all_of(flows_.begin(), flows_.end(),
                                       [](const Flow& f) { return !f.owned || f.consumed >= f.published * f.copies; });
            } else {
                if (!measuring_ && now >= run_start_ + seconds_to_ns(s_.warmup)) begin_measure(now);
                done = now >= deadline_;
            }
            if (done) {
                end_measure(now);
                publishing_ = false;
                phase_ = Phase::Settling;
                deadline_ = now + seconds_to_ns(s_.settle);
            }
            break;
        }
        case Phase::Settling:
            if (now < deadline_) break;
            if (control_ && target_.broker_pid > 0 && result_.error.empty())
                result_.rss_kib = read_rss_kib(target_.broker_pid);
            for (auto& c : clients_) c->conn.close();
            phase_ = Phase::Closing;
            deadline_ = now + close_timeout_ns;
            [[fallthrough]];
        case Phase::Closing:
            if (now < deadline_ &&
                std::any_of(clients_.begin(), clients_.end(), [](const auto& c) { return c->conn.is_live(); }))
                break;
            clients_.clear();  // closes whatever did not finish closing
            producers_.clear();
            if (!counted_closed_) {
                counted_closed_ = true;
                ++coordinator_.closed;
            }
            if (!control_) {
                phase_ = Phase::Done;
                break;
            }
            phase_ = Phase::Deleting;
            deadline_ = now + close_timeout_ns;
            [[fallthrough]];
        case Phase::Deleting:
            // The queues go once every thread has closed its connections (or stopped waiting).
            if (!deletes_sent_) {
                if (coordinator_.closed < coordinator_.threads && now < deadline_) break;
                deletes_sent_ = true;
                deadline_ = now + close_timeout_ns;
                if (control_->conn.is_open() && !s_.keep_queues) {
                    send_deletes();
                } else {
                    control_->conn.close();
                }
            }
            if (control_->conn.is_open() && control_->pending_replies == 0) control_->conn.close();
            if (!control_->conn.is_live() || now >= deadline_) phase_ = Phase::Done;
            break;
        case Phase::Done:
            break;
    }
}

void GeneratorLoop::start_pending() {
    if (phase_ != Phase::Preparing || !coordinator_.declared) return;
    int handshaking = 0;
    for (std::size_t i = 0; i < next_start_; ++i) {
        ConnState st = clients_[i]->conn.state();
        if (st == ConnState::Connecting || st == ConnState::Handshake) ++handshaking;
    }
    while (next_start_ < clients_.size() && handshaking < max_concurrent_handshakes) {
        Client& c = *clients_[next_start_++];
        if (!c.conn.start(epoll_fd_, target_.address, &c)) {
            abort(c.conn.error());
            return;
        }
        ++handshaking;
    }
}

void GeneratorLoop::handle_event(Client& c, std::uint32_t events) {
    bool was_open = c.conn.is_open();
    c.conn.on_event(events, [&](const Frame& frame) { on_frame(c, frame); });
    if (!was_open && c.conn.is_open()) on_open(c);
    if (c.conn.is_blocked()) result_.blocked = true;
    if (c.conn.state() == ConnState::Failed && phase_ < Phase::Closing) {
        const char* role = c.role == Role::Control    ? "control"
                           : c.role == Role::Producer ? "producer"
                           : c.role == Role::Consumer ? "consumer"
                                                      : "idle";
        abort(fmt::format("{} connection {}: {}", role, c.index, c.conn.error()));
    }
}

void GeneratorLoop::on_open(Client& c) {
    ByteBuffer& out = c.conn.out();
    switch (c.role) {
        case Role::Control:
            if (s_.max_delay_ms > 0) {
                ByteBuffer args = encode_table_body([] {
                    FieldTable t;
                    t.set("x-delayed-type", std::string("direct"));
                    return t;
                }());
                write_method_frame(out, 1,
                                   ExchangeDeclare{0, std::string_view(delayed_exchange_), "x-delayed-message", false,
                                                   true, false, false, false, TableView::trusted(args.span())});
                ++c.pending_replies;
            }
            if (s_.fanout) {
                write_method_frame(
                    out, 1,
                    ExchangeDeclare{
                        0, std::string_view(fanout_exchange_), "fanout", false, false, false, false, false, {}});
                ++c.pending_replies;
            }
            for (const std::string& q : queue_names_) {
                write_method_frame(out, 1,
                                   QueueDeclare{0, std::string_view(q), false, s_.durable, false, false, false,
                                                TableView::trusted(queue_args_.span())});
                ++c.pending_replies;
                if (s_.fanout) {
                    write_method_frame(
                        out, 1, QueueBind{0, std::string_view(q), std::string_view(fanout_exchange_), "", false, {}});
                    ++c.pending_replies;
                }
                if (s_.max_delay_ms > 0) {
                    write_method_frame(out, 1,
                                       QueueBind{0,
                                                 std::string_view(q),
                                                 std::string_view(delayed_exchange_),
                                                 std::string_view(q),
                                                 false,
                                                 {}});
                    ++c.pending_replies;
                }
            }
            if (phase_ == Phase::Connecting) phase_ = Phase::Declaring;
            break;
        case Role::Producer:
            encode_message(c);
            if (s_.confirm > 0) {
                c.confirms.reset(s_.confirm);
                write_method_frame(out, 1, ConfirmSelect{false});
                ++c.pending_replies;
            }
            break;
        case Role::Consumer: {
            if (s_.prefetch > 0) {
                write_method_frame(out, 1, BasicQos{0, s_.prefetch, false});
                ++c.pending_replies;
            }
            std::string tag = fmt::format("bench-{}", c.index);
            write_method_frame(out, 1,
                               BasicConsume{0, std::string_view(c.queue), std::string_view(tag), false, s_.no_ack,
                                            false, false, TableView::trusted(consumer_args_.span())});
            ++c.pending_replies;
            break;
        }
        case Role::Idle:
            break;
    }
    c.ready = c.pending_replies == 0;
    c.conn.flush();
}

// One publish, encoded once per producer; each send copies it and patches in the send time.
void GeneratorLoop::encode_message(Client& p) {
    ByteBuffer& m = p.message;
    m.clear();
    write_method_frame(m, 1, BasicPublish{0, std::string_view(p.exchange), std::string_view(p.queue), false, false});
    BasicProperties properties;
    ByteBuffer headers;
    if (s_.persistent) {
        properties.delivery_mode = 2;
        properties.set_flag(property_flag::delivery_mode);
    }
    if (s_.max_delay_ms > 0) {
        FieldTable t;
        t.set("x-delay", std::int32_t{0});  // each publish patches in its own
        headers = encode_table_body(t);
        properties.headers = TableView::trusted(headers.span());
        properties.set_flag(property_flag::headers);
    }
    ByteBuffer props;
    encode_properties(props, properties);
    const std::size_t header_at = m.size();
    write_content_header(m, 1, class_id::basic, s_.body, props.span());
    p.delay_at = 0;
    if (s_.max_delay_ms > 0) {
        // The table's one entry ends with the value: 'I' and 4 bytes, big-endian.
        static constexpr std::string_view key = "\x07x-delayI";
        std::string_view bytes(reinterpret_cast<const char*>(m.data()) + header_at, m.size() - header_at);
        p.delay_at = header_at + bytes.find(key) + key.size();
    }
    std::size_t max_payload = p.conn.frame_max() - frame_overhead;
    p.stamp_at = s_.body >= sizeof(std::uint64_t) ? m.size() + frame_header_size : 0;
    for (std::size_t done = 0; done < s_.body;) {
        std::size_t n = std::min(max_payload, s_.body - done);
        Writer w(m);
        write_frame_header(w, FrameType::Body, 1, static_cast<std::uint32_t>(n));
        std::memset(m.extend(n), 'x', n);
        w.u8(frame_end);
        done += n;
    }
    // Client mode sends each message alone, but a loop turn still stops at the same bounds, so
    // that consumers are served between turns.
    p.batch = std::clamp<std::uint64_t>(max_batch_bytes / m.size(), 1, max_batch_messages);
}

// Publishes what the bounds allow; returns true if it could go on right away.
bool GeneratorLoop::pump(Client& p, std::uint64_t now) {
    p.wake_at = UINT64_MAX;
    if (!p.ready || !p.conn.can_write()) return false;
    std::uint64_t n = p.batch;
    Flow& flow = *p.flow;
    if (flow.bounded) {
        std::int64_t room = static_cast<std::int64_t>(s_.max_inflight) - flow.backlog() / flow.copies;
        n = room > 0 ? std::min(n, static_cast<std::uint64_t>(room)) : 0;
    }
    if (s_.confirm > 0) n = std::min(n, s_.confirm - (p.sent - p.confirms.settled()));
    if (s_.messages > 0) n = std::min(n, p.quota - p.sent);
    if (s_.rate > 0) {
        // Message k is due at k / rate seconds. After a stall, skip what is more than 10 ms
        // late instead of sending it in a burst.
        auto due = static_cast<std::uint64_t>(static_cast<double>(now - run_start_) * 1e-9 * s_.rate) + 1;
        auto max_lag = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(s_.rate / 100));
        if (due > p.rate_sent + max_lag) p.rate_sent = due - max_lag;
        if (n > due - p.rate_sent) {
            n = due - p.rate_sent;
            auto next_due =
                run_start_ + static_cast<std::uint64_t>(static_cast<double>(p.rate_sent + n) / s_.rate * 1e9);
            p.wake_at = std::max(next_due, p.last_send + min_pacing_ns);
        }
    }
    if (n == 0) return false;

    std::uint64_t stamp = now_ns();
    p.last_send = stamp;
    std::uint64_t wanted = n;
    // Delayed scenarios: a delay per message, in the x-delay header and after the stamp.
    auto set_delay = [&](std::byte* message) {
        if (!p.delay_at) return;
        auto delay = static_cast<std::uint32_t>(delays_() % (s_.max_delay_ms + 1));
        const std::uint32_t be = __builtin_bswap32(delay);
        std::memcpy(message + p.delay_at, &be, sizeof be);
        if (s_.body >= sizeof stamp + sizeof delay)
            std::memcpy(message + p.stamp_at + sizeof stamp, &delay, sizeof delay);
    };
    if (s_.mode == LoadMode::Client) {
        // One send per publish, each stamped when it is written; stop when the socket is full.
        n = 0;
        while (n < wanted && p.conn.can_write()) {
            if (p.stamp_at) std::memcpy(p.message.data() + p.stamp_at, &stamp, sizeof stamp);
            set_delay(p.message.data());
            p.conn.send_whole(p.message.span());
            ++n;
            if (n < wanted) stamp = now_ns();
        }
    } else {
        std::size_t size = p.message.size();
        std::byte* dst = p.conn.out().extend(n * size);
        for (std::uint64_t i = 0; i < n; ++i, dst += size) {
            std::memcpy(dst, p.message.data(), size);
            if (p.stamp_at) std::memcpy(dst + p.stamp_at, &stamp, sizeof stamp);
            set_delay(dst);
        }
        p.conn.flush();
    }
    p.sent += n;
    p.rate_sent += n;
    flow.published += n;
    if (measuring_) result_.backlog_max = std::max(result_.backlog_max, backlog());
    return n == p.batch && p.conn.can_write();
}

std::uint64_t GeneratorLoop::next_wakeup(std::uint64_t now) const {
    std::uint64_t at = std::min(deadline_, now + max_wait_ns);
    bool waiting_for_others = phase_ == Phase::Preparing || (phase_ == Phase::Deleting && !deletes_sent_);
    if (coordinator_.threads > 1 && waiting_for_others) at = std::min(at, now + coordination_poll_ns);
    if (publishing_) {
        for (const Client* p : producers_) at = std::min(at, p->wake_at);
    }
    return std::max(at, now);
}

void GeneratorLoop::on_frame(Client& c, const Frame& frame) {
    if (c.role == Role::Consumer) {
        on_consumer_frame(c, frame);
    } else if (frame.type == FrameType::Method) {
        on_method(c, frame);
    }
    // Content of a basic.return (we never set mandatory) is ignored.
}

// The hot path: three frames per delivery, parsed in place.
void GeneratorLoop::on_consumer_frame(Client& c, const Frame& frame) {
    switch (frame.type) {
        case FrameType::Method: {
            Reader r(frame.payload);
            MethodId id{r.u16(), r.u16()};
            if (id != BasicDeliver::id) return on_method(c, frame);
            BasicDeliver deliver;
            decode_fields(r, deliver);
            c.delivery_tag = deliver.delivery_tag;
            c.in_delivery = true;
            c.has_stamp = false;
            break;
        }
        case FrameType::Header: {
            if (!c.in_delivery) return;
            Reader r(frame.payload);
            r.u16();  // class
            r.u16();  // weight
            c.body_left = r.u64();
            if (c.body_left == 0) on_delivery(c);
            break;
        }
        case FrameType::Body:
            if (!c.in_delivery) return;
            if (!c.has_stamp && frame.payload.size() >= sizeof c.stamp) {
                std::memcpy(&c.stamp, frame.payload.data(), sizeof c.stamp);
                c.has_stamp = s_.body >= sizeof c.stamp;
                c.delay_ms = 0;
                if (s_.max_delay_ms > 0 && frame.payload.size() >= sizeof c.stamp + sizeof c.delay_ms)
                    std::memcpy(&c.delay_ms, frame.payload.data() + sizeof c.stamp, sizeof c.delay_ms);
            }
            c.body_left -= std::min<std::uint64_t>(c.body_left, frame.payload.size());
            if (c.body_left == 0) on_delivery(c);
            break;
        case FrameType::Heartbeat:
            break;
    }
}

void GeneratorLoop::on_delivery(Client& c) {
    c.in_delivery = false;
    ++c.flow->consumed;
    if (measuring_ && c.has_stamp) {
        // Delayed scenarios: lateness, from the moment the message was due.
        // Timed at the read that brought it: an event's later read rounds bring bytes the broker
        // sent after the event began (timed at its start, 53 of a million looked early).
        const std::uint64_t got = c.conn.read_at_ns();
        const std::uint64_t due = c.stamp + std::uint64_t{c.delay_ms} * 1'000'000;
        if (got < due && s_.max_delay_ms > 0) ++result_.early;
        latency_.record(got > due ? got - due : 0);
    }
    if (s_.no_ack) return;
    bool acked = false;
    if (s_.multi_ack <= 1) {
        write_method_frame(c.conn.out(), 1, BasicAck{c.delivery_tag, false});
        acked = true;
    } else if (++c.unacked >= s_.multi_ack) {
        write_method_frame(c.conn.out(), 1, BasicAck{c.delivery_tag, true});
        c.unacked = 0;
        acked = true;
    }
    // A client acks from its delivery handler: a send per ack. Pipelined, the acks of one read
    // leave together after it.
    if (acked && s_.mode == LoadMode::Client) c.conn.flush();
}

// Replies to setup and teardown, and publisher confirms.
void GeneratorLoop::on_method(Client& c, const Frame& frame) {
    Reader r(frame.payload);
    MethodId id{r.u16(), r.u16()};
    bool known = visit_method(id, r, [&](auto& m) {
        using M = std::remove_cvref_t<decltype(m)>;
        if constexpr (std::is_same_v<M, BasicAck> || std::is_same_v<M, BasicNack>) {
            if (c.role != Role::Producer || s_.confirm == 0) return c.conn.fail(fmt::format("unexpected {}", M::name));
            std::uint64_t n = c.confirms.settle(m.delivery_tag, m.multiple);
            if constexpr (std::is_same_v<M, BasicNack>) c.nacked += n;
        } else if constexpr (std::is_same_v<M, ExchangeDeclareOk> || std::is_same_v<M, QueueDeclareOk> ||
                             std::is_same_v<M, QueueBindOk> || std::is_same_v<M, QueueDeleteOk> ||
                             std::is_same_v<M, ExchangeDeleteOk> || std::is_same_v<M, BasicQosOk> ||
                             std::is_same_v<M, BasicConsumeOk> || std::is_same_v<M, ConfirmSelectOk>) {
            if (--c.pending_replies == 0 && c.role != Role::Control) c.ready = true;
        } else if constexpr (std::is_same_v<M, BasicReturn> || std::is_same_v<M, BasicCancelOk> ||
                             std::is_same_v<M, ChannelFlow>) {
            // Not expected, harmless.
        } else {
            c.conn.fail(fmt::format("unexpected {}", M::name));
        }
    });
    if (!known || !r.ok()) c.conn.fail(fmt::format("malformed or unknown method {}.{}", id.class_id, id.method_id));
}

void GeneratorLoop::send_deletes() {
    ByteBuffer& out = control_->conn.out();
    for (const std::string& q : queue_names_) {
        write_method_frame(out, 1, QueueDelete{0, std::string_view(q), false, false, false});
        ++control_->pending_replies;
    }
    if (s_.fanout) {
        write_method_frame(out, 1, ExchangeDelete{0, std::string_view(fanout_exchange_), false, false});
        ++control_->pending_replies;
    }
    if (s_.max_delay_ms > 0) {
        write_method_frame(out, 1, ExchangeDelete{0, std::string_view(delayed_exchange_), false, false});
        ++control_->pending_replies;
    }
    control_->conn.flush();
}

std::int64_t GeneratorLoop::backlog() const {
    std::int64_t total = 0;
    for (const Flow& f : flows_) {
        if (f.bounded || s_.max_delay_ms > 0) total += f.backlog();
    }
    return total;
}

GeneratorLoop::Snapshot GeneratorLoop::snapshot(std::uint64_t now) const {
    Snapshot s;
    s.time = now;
    s.cpu = cpu_seconds();  // the whole process: every thread
    if (index_ == 0 && target_.broker_pid > 0) s.broker_cpu = read_cpu_seconds(target_.broker_pid);
    for (const Flow& f : flows_) {
        s.published += f.published;
        s.consumed += f.consumed;
        s.flow_consumed.push_back(f.consumed);
    }
    for (const Client* p : producers_) {
        s.confirmed += p->confirms.settled() - p->nacked;
        s.nacked += p->nacked;
    }
    return s;
}

void GeneratorLoop::begin_measure(std::uint64_t now) {
    begin_ = snapshot(now);
    latency_.clear();
    measuring_ = true;
    result_.backlog_max = backlog();
}

void GeneratorLoop::end_measure(std::uint64_t now) {
    if (!measuring_) return;
    measuring_ = false;
    end_ = snapshot(now);
    Result& r = result_;
    r.seconds = static_cast<double>(end_.time - begin_.time) * 1e-9;
    r.published = end_.published - begin_.published;
    r.consumed = end_.consumed - begin_.consumed;
    r.confirmed = end_.confirmed - begin_.confirmed;
    r.nacked = end_.nacked - begin_.nacked;
    if (r.seconds > 0) {
        r.publish_rate = static_cast<double>(r.published) / r.seconds;
        r.consume_rate = static_cast<double>(r.consumed) / r.seconds;
        r.generator_cpu = (end_.cpu - begin_.cpu) / r.seconds;
    }
    // Per message: run_scenario divides, once every thread's messages are counted.
    if (begin_.broker_cpu && end_.broker_cpu) r.broker_cpu_seconds = *end_.broker_cpu - *begin_.broker_cpu;
    if (s_.total_consumers() > 0 && r.seconds > 0) {
        double sum = 0, least = -1;
        int owned = 0;
        for (std::size_t i = 0; i < flows_.size(); ++i) {
            if (!flows_[i].owned) continue;
            double rate = static_cast<double>(end_.flow_consumed[i] - begin_.flow_consumed[i]) / r.seconds;
            sum += rate;
            least = least < 0 ? rate : std::min(least, rate);
            ++owned;
        }
        r.flow_rate_min = std::max(least, 0.0);
        r.flow_rate_mean = owned > 0 ? sum / owned : 0;
    }
    r.backlog_end = backlog();
    r.backlog_max = std::max(r.backlog_max, r.backlog_end);
    set_latency(r, latency_);
}

}  // namespace

LoopOutput run_generator_loop(const Scenario& scenario, const Target& target, Coordinator& coordinator, int index) {
    GeneratorLoop loop(scenario, target, coordinator, index);
    LoopOutput out;
    out.result = loop.run();
    out.latency = loop.latency();
    out.flows = loop.owned_flows();
    return out;
}

void set_latency(Result& r, const Histogram& h) {
    r.latency_samples = h.count();
    r.latency_p50 = h.percentile(0.50);
    r.latency_p99 = h.percentile(0.99);
    r.latency_p999 = h.percentile(0.999);
    r.latency_max = h.max();
    r.latency_mean = h.mean();
}

}  // namespace warren::bench
