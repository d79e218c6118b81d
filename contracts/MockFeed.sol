// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";

/// @title MockFeed
/// @notice Test double: Chainlink's own MockV3Aggregator, exposed as a project contract
///         (Ape only builds containers for contracts defined in project files).
contract MockFeed is MockV3Aggregator {
    constructor(uint8 decimals_, int256 initialAnswer) MockV3Aggregator(decimals_, initialAnswer) {}

    /// @notice Changes the reported decimals, as a proxy re-pointed to another aggregator would.
    function setDecimals(uint8 decimals_) external {
        decimals = decimals_;
    }
}
