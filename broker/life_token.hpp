// A weak handle to an object, for callbacks that may run after it is gone (a storage ticket
// settling after its connection closed). The object owns a LifeToken; a callback captures
// watch() and checks it before touching the object.
#pragma once

#include <memory>

namespace warren::broker {

class LifeToken {
public:
    std::weak_ptr<const bool> watch() const { return alive_; }

private:
    std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

}  // namespace warren::broker
