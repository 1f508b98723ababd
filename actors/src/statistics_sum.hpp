#pragma once
// Adding one engine's statistics to a sum: the balancer's over its devices, the
// cluster's over its nodes. Internal to the actors library.

#include "gpumem/messages/types.hpp"

namespace gpumem::actors {

/// Adds every counter of `x` to `sum`, tag by tag (tags kept in name order).
void add_statistics(messages::statistics& sum, const messages::statistics& x);

} // namespace gpumem::actors
