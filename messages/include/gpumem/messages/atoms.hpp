#pragma once
// The protocol's atoms: the first element of every request, naming the operation.
// caf::atom_constant texts hold at most 10 characters; equal texts are the same type,
// so subscribe_atom and unsubscribe_atom coincide with CAF's own (harmless).

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

namespace gpumem::messages {

// -- allocation ------------------------------------------------------------------
using allocate_atom = caf::atom_constant<caf::atom("allocate")>;         // one region
using deallocate_atom = caf::atom_constant<caf::atom("deallocate")>;     // by id or handle
using deallocate_at_atom = caf::atom_constant<caf::atom("dealloc_at")>;  // by address
using batch_allocate_atom = caf::atom_constant<caf::atom("batchalloc")>; // all or nothing
using batch_deallocate_atom = caf::atom_constant<caf::atom("batchfree")>; // all or nothing
using touch_atom = caf::atom_constant<caf::atom("touch")>;               // renew LRU order

// -- sleep and wake --------------------------------------------------------------
using sleep_atom = caf::atom_constant<caf::atom("sleep")>;          // one device
using wake_atom = caf::atom_constant<caf::atom("wake")>;            // one device
using sleep_all_atom = caf::atom_constant<caf::atom("sleep_all")>;  // every device
using wake_all_atom = caf::atom_constant<caf::atom("wake_all")>;    // every device
// Two phases of a collective transition on one device (see docs/state-machine.md).
using prepare_sleep_atom = caf::atom_constant<caf::atom("prep_sleep")>;  // phase one
using prepare_wake_atom = caf::atom_constant<caf::atom("prep_wake")>;    // phase one
using commit_atom = caf::atom_constant<caf::atom("txn_commit")>;         // phase two
using abort_atom = caf::atom_constant<caf::atom("txn_abort")>;           // or this

// -- maintenance -----------------------------------------------------------------
using trim_atom = caf::atom_constant<caf::atom("trim")>;
using defragment_atom = caf::atom_constant<caf::atom("defragment")>;

// -- observation -----------------------------------------------------------------
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using info_atom = caf::atom_constant<caf::atom("info")>;

// -- memory pressure -------------------------------------------------------------
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("unsubscrib")>;
using pressure_atom = caf::atom_constant<caf::atom("pressure")>;

// -- topology --------------------------------------------------------------------
using add_device_atom = caf::atom_constant<caf::atom("add_device")>;
using remove_device_atom = caf::atom_constant<caf::atom("rm_device")>;

// -- nodes -----------------------------------------------------------------------
using endpoint_atom = caf::atom_constant<caf::atom("endpoint")>;  // a node's handles
using join_atom = caf::atom_constant<caf::atom("join")>;          // a node joins a cluster
using leave_atom = caf::atom_constant<caf::atom("leave")>;        // a cluster forgets it
using collective_atom = caf::atom_constant<caf::atom("collective")>;  // sleep/wake nodes

// -- replies ---------------------------------------------------------------------
/// The reply of operations that return nothing but success (failures are errors).
using ok_atom = caf::ok_atom;

} // namespace gpumem::messages
