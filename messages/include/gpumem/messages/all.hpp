#pragma once
// The whole public protocol: atoms, value types, errors, actor interfaces, registration.

#include "gpumem/messages/atoms.hpp"
#include "gpumem/messages/errors.hpp"
#include "gpumem/messages/types.hpp"
#include "gpumem/messages/actors.hpp"
#include "gpumem/messages/register.hpp"
