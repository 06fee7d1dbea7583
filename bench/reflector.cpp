// warren-bench-reflector: a stub AMQP 0-9-1 peer that measures the load generator, not a broker.
// Each publish is streamed straight to one consumer of the queue it names (or of every queue
// bound to the fan-out exchange it names): no storage, no prefetch, no flow control beyond the
// generator's own backlog bound. Messages for a queue without consumers are dropped.
// Usage: warren-bench-reflector --port N [--bind 127.0.0.1]; runs until SIGINT or SIGTERM.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol/field_table.hpp"
#include "protocol/frame_writer.hpp"
#include "protocol/methods.hpp"

namespace {

using namespace warren::protocol;

volatile std::sig_atomic_t stopping = 0;
constexpr std::uint32_t frame_max = 131072;
constexpr std::size_t read_chunk = 1024 * 1024;

struct Peer;

struct Consumer {
    Peer* peer;  // not owned; Reflector::drop() unregisters
    std::string tag;
};

struct Queue {
    std::vector<Consumer> consumers;
    std::size_t next = 0;  // round robin
};

struct Peer {
    int fd = -1;
    bool greeted = false;  // protocol header received
    bool closing = false;  // close-ok sent: drop once flushed
    bool dead = false;
    bool confirm = false;
    bool want_write = false;
    std::uint64_t published = 0;  // publish sequence, for confirms
    std::uint64_t confirmed = 0;
    std::uint64_t delivery_tag = 0;
    ByteBuffer in, out;
    std::size_t out_pos = 0;
    // The publish being received: where its header and body frames go.
    std::vector<Consumer*> targets;
    std::string exchange, routing_key;
};

class Reflector {
public:
    explicit Reflector(int epoll_fd) : epoll_fd_(epoll_fd) {}

    void accept_all(int listen_fd) {
        while (true) {
            int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            auto peer = std::make_unique<Peer>();
            peer->fd = fd;
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = peer.get();
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
            peers_.push_back(std::move(peer));
        }
    }

    void on_event(Peer& p, std::uint32_t events) {
        if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
        p.in.reserve(p.in.size() + read_chunk);
        ssize_t n = ::recv(p.fd, p.in.data() + p.in.size(), p.in.capacity() - p.in.size(), 0);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) p.dead = true;
            return;
        }
        p.in.extend(static_cast<std::size_t>(n));
        std::size_t pos = 0;
        if (!p.greeted) {
            if (p.in.size() < 8) return;
            p.greeted = true;
            pos = 8;
            send_start(p);
        }
        while (!p.dead) {
            auto parse = parse_frame(p.in.span().subspan(pos), frame_max);
            if (parse.status == FrameStatus::NeedMore) break;
            if (parse.status == FrameStatus::Error) {
                p.dead = true;
                break;
            }
            pos += parse.consumed;
            on_frame(p, parse.frame);
        }
        p.in.consume_front(pos);
        if (p.confirm && p.published > p.confirmed) {
            write_method_frame(p.out, 1, BasicAck{p.published, true});
            p.confirmed = p.published;
        }
    }

    // After each batch of events: flush every peer's output, then drop the dead.
    void flush_all() {
        for (auto& p : peers_) {
            if (!p->dead) flush(*p);
            if (p->closing && p->out_pos == p->out.size()) p->dead = true;
        }
        for (auto& p : peers_) {
            if (p->dead) drop(*p);
        }
        std::erase_if(peers_, [](const auto& p) { return p->dead; });
    }

private:
    void flush(Peer& p) {
        while (p.out_pos < p.out.size()) {
            ssize_t n = ::send(p.fd, p.out.data() + p.out_pos, p.out.size() - p.out_pos, MSG_NOSIGNAL);
            if (n > 0) {
                p.out_pos += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else {
                p.dead = true;
                return;
            }
        }
        if (p.out_pos == p.out.size()) {
            p.out.clear();
            p.out_pos = 0;
        }
        bool want_write = p.out_pos < p.out.size();
        if (want_write != p.want_write) {
            p.want_write = want_write;
            epoll_event ev{};
            ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
            ev.data.ptr = &p;
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, p.fd, &ev);
        }
    }

    void drop(Peer& p) {
        for (auto& [name, q] : queues_) {
            std::erase_if(q.consumers, [&](const Consumer& c) { return c.peer == &p; });
        }
        for (auto& other : peers_) other->targets.clear();  // a publish in flight may point at p
        ::close(p.fd);
    }

    void send_start(Peer& p) {
        static const ByteBuffer props = [] {
            FieldTable capabilities;
            capabilities.set("publisher_confirms", true);
            capabilities.set("basic.nack", true);
            capabilities.set("consumer_cancel_notify", true);
            FieldTable t;
            t.set("product", "warren-bench-reflector");
            t.set("capabilities", std::move(capabilities));
            return encode_table_body(t);
        }();
        write_method_frame(p.out, 0, ConnectionStart{0, 9, TableView::trusted(props.span()), "PLAIN", "en_US"});
    }

    void on_frame(Peer& p, const Frame& frame) {
        switch (frame.type) {
            case FrameType::Method:
                return on_method(p, frame);
            case FrameType::Header:
                for (Consumer* c : p.targets) {
                    write_method_frame(c->peer->out, 1,
                                       BasicDeliver{std::string_view(c->tag), ++c->peer->delivery_tag, false,
                                                    std::string_view(p.exchange), std::string_view(p.routing_key)});
                    Writer w(c->peer->out);
                    write_frame_header(w, FrameType::Header, 1, static_cast<std::uint32_t>(frame.payload.size()));
                    w.bytes(frame.payload);
                    w.u8(frame_end);
                }
                return;
            case FrameType::Body:
                for (Consumer* c : p.targets) {
                    Writer w(c->peer->out);
                    write_frame_header(w, FrameType::Body, 1, static_cast<std::uint32_t>(frame.payload.size()));
                    w.bytes(frame.payload);
                    w.u8(frame_end);
                }
                return;
            case FrameType::Heartbeat:
                return;
        }
    }

    Consumer* pick(std::string_view queue) {
        auto it = queues_.find(queue);
        if (it == queues_.end() || it->second.consumers.empty()) return nullptr;
        Queue& q = it->second;
        return &q.consumers[q.next++ % q.consumers.size()];
    }

    void on_method(Peer& p, const Frame& frame) {
        Reader r(frame.payload);
        MethodId id{r.u16(), r.u16()};
        std::uint16_t ch = frame.channel;
        visit_method(id, r, [&](auto& m) {
            using M = std::remove_cvref_t<decltype(m)>;
            if constexpr (std::is_same_v<M, BasicPublish>) {
                ++p.published;
                p.targets.clear();
                p.exchange.assign(m.exchange.view());
                p.routing_key.assign(m.routing_key.view());
                if (m.exchange.empty()) {
                    if (Consumer* c = pick(m.routing_key.view())) p.targets.push_back(c);
                } else if (auto it = fanouts_.find(m.exchange.view()); it != fanouts_.end()) {
                    for (const std::string& q : it->second) {
                        if (Consumer* c = pick(q)) p.targets.push_back(c);
                    }
                }
            } else if constexpr (std::is_same_v<M, BasicAck> || std::is_same_v<M, BasicNack> ||
                                 std::is_same_v<M, BasicReject>) {
                // Consumers' acks: nothing is stored, so nothing to settle.
            } else if constexpr (std::is_same_v<M, ConnectionStartOk>) {
                write_method_frame(p.out, 0, ConnectionTune{2047, frame_max, 0});
            } else if constexpr (std::is_same_v<M, ConnectionOpen>) {
                write_method_frame(p.out, 0, ConnectionOpenOk{});
            } else if constexpr (std::is_same_v<M, ConnectionClose>) {
                write_method_frame(p.out, 0, ConnectionCloseOk{});
                p.closing = true;
            } else if constexpr (std::is_same_v<M, ChannelOpen>) {
                write_method_frame(p.out, ch, ChannelOpenOk{});
            } else if constexpr (std::is_same_v<M, ChannelClose>) {
                write_method_frame(p.out, ch, ChannelCloseOk{});
            } else if constexpr (std::is_same_v<M, ExchangeDeclare>) {
                if (m.type.view() == "fanout") fanouts_[std::string(m.exchange.view())];
                write_method_frame(p.out, ch, ExchangeDeclareOk{});
            } else if constexpr (std::is_same_v<M, ExchangeDelete>) {
                if (auto it = fanouts_.find(m.exchange.view()); it != fanouts_.end()) fanouts_.erase(it);
                write_method_frame(p.out, ch, ExchangeDeleteOk{});
            } else if constexpr (std::is_same_v<M, QueueDeclare>) {
                queues_[std::string(m.queue.view())];
                write_method_frame(p.out, ch, QueueDeclareOk{m.queue, 0, 0});
            } else if constexpr (std::is_same_v<M, QueueBind>) {
                if (auto it = fanouts_.find(m.exchange.view()); it != fanouts_.end())
                    it->second.emplace_back(m.queue.view());
                write_method_frame(p.out, ch, QueueBindOk{});
            } else if constexpr (std::is_same_v<M, QueueDelete>) {
                if (auto it = queues_.find(m.queue.view()); it != queues_.end()) queues_.erase(it);
                for (auto& [name, bound] : fanouts_) std::erase(bound, std::string(m.queue.view()));
                for (auto& other : peers_) other->targets.clear();
                write_method_frame(p.out, ch, QueueDeleteOk{0});
            } else if constexpr (std::is_same_v<M, BasicQos>) {
                write_method_frame(p.out, ch, BasicQosOk{});
            } else if constexpr (std::is_same_v<M, BasicConsume>) {
                queues_[std::string(m.queue.view())].consumers.push_back(
                    Consumer{&p, std::string(m.consumer_tag.view())});
                for (auto& other : peers_) other->targets.clear();  // the vector may have moved
                write_method_frame(p.out, ch, BasicConsumeOk{m.consumer_tag});
            } else if constexpr (std::is_same_v<M, ConfirmSelect>) {
                p.confirm = true;
                write_method_frame(p.out, ch, ConfirmSelectOk{});
            }
        });
    }

    int epoll_fd_;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::map<std::string, Queue, std::less<>> queues_;
    std::map<std::string, std::vector<std::string>, std::less<>> fanouts_;  // name -> bound queues
};

void on_signal(int) {
    stopping = 1;
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0;
    std::string bind_address = "127.0.0.1";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string arg = argv[i];
        if (arg == "--port") {
            port = std::atoi(argv[i + 1]);
        } else if (arg == "--bind") {
            bind_address = argv[i + 1];
        }
    }
    if (port <= 0) {
        fmt::print(stderr, "usage: warren-bench-reflector --port N [--bind 127.0.0.1]\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, bind_address.c_str(), &addr.sin_addr);
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd, 1024) != 0) {
        fmt::print(stderr, "warren-bench-reflector: cannot listen on {}:{}: {}\n", bind_address, port,
                   std::strerror(errno));
        return 1;
    }
    int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listener
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);

    Reflector reflector(epoll_fd);
    std::vector<epoll_event> events(256);
    while (!stopping) {
        int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 200);
        for (int i = 0; i < n; ++i) {
            auto& e = events[static_cast<std::size_t>(i)];
            if (e.data.ptr == nullptr) {
                reflector.accept_all(listen_fd);
            } else {
                reflector.on_event(*static_cast<Peer*>(e.data.ptr), e.events);
            }
        }
        reflector.flush_all();
    }
    return 0;
}
