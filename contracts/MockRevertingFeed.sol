// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MockRevertingFeed
/// @notice Test double: a price feed whose `latestRoundData` always reverts (a broken
///         or deprecated aggregator). `decimals` answers so it can be registered first
///         behind a switch.
contract MockRevertingFeed {
    error MockFeedBroken();

    uint8 public constant decimals = 8;
    int256 public constant INITIAL_ANSWER = 1e8;
    bool public broken;

    /// @notice Makes every later `latestRoundData` call revert (or answer again).
    function setBroken(bool broken_) external {
        broken = broken_;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        if (broken) revert MockFeedBroken();
        return (1, INITIAL_ANSWER, block.timestamp, block.timestamp, 1);
    }
}
