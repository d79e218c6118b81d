// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessManager} from "@openzeppelin/contracts/access/manager/AccessManager.sol";

/// @title SentinelAccessManager
/// @notice OpenZeppelin's AccessManager, unchanged: the one authority of Vault and
///         Executor (roles, per-role execution delays, scheduled operations, guardians
///         that cancel). A project file only so that Ape builds a container for it.
contract SentinelAccessManager is AccessManager {
    /// @param initialAdmin The first holder of ADMIN_ROLE (the deployer, with no delay).
    constructor(address initialAdmin) AccessManager(initialAdmin) {}
}
