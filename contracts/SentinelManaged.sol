// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IAccessManager} from "@openzeppelin/contracts/access/manager/IAccessManager.sol";

/// @title SentinelManaged
/// @notice OpenZeppelin's AccessManaged, with one path closed: a change of authority only
///         through the manager's `updateAuthority`, never a direct `setAuthority` call sent
///         through the manager's `execute`.
/// @dev The manager treats a scheduled `setAuthority` on a target as an ADMIN operation whose
///      guardian is ADMIN itself, so the guardian could not cancel it. `updateAuthority` is a
///      function of the manager, tagged GOVERNOR (keepers/access.py), so the guardian cancels
///      any scheduled one. During `execute(target, data)` the manager records (target,
///      selector) as the call being executed, and `canCall(manager, target, selector)`
///      answers true exactly then: that is how this contract tells the two paths apart.
abstract contract SentinelManaged is AccessManaged {
    /// @notice `setAuthority(newAuthority)` came through the manager's `execute`, a path the
    ///         guardian cannot cancel: schedule `manager.updateAuthority(target, newAuthority)` instead.
    error SentinelManagedSetAuthorityViaExecute(address newAuthority);

    /// @param manager The AccessManager that decides who may call the restricted functions.
    constructor(address manager) AccessManaged(manager) {}

    /// @notice Moves this contract to `newAuthority`; only the manager's `updateAuthority` may.
    /// @dev Reverts SentinelManagedSetAuthorityViaExecute when sent through `execute`, and
    ///      AccessManagedUnauthorized for any caller but the current authority.
    /// @param newAuthority The new AccessManager (must have code).
    function setAuthority(address newAuthority) public override {
        address manager = authority();
        // Only `immediate` matters: for the manager itself the delay is always zero.
        // slither-disable-next-line unused-return
        (bool viaExecute,) = IAccessManager(manager).canCall(manager, address(this), msg.sig);
        if (viaExecute) revert SentinelManagedSetAuthorityViaExecute(newAuthority);
        super.setAuthority(newAuthority);
    }
}
