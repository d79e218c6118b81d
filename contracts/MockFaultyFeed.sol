// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MockFaultyFeed
/// @notice Test double: a price feed that answers well (1 USD, 8 decimals, fresh) until
///         told to fail the way a broken or hostile aggregator could: revert, return too
///         few or far too many bytes, or a round id that does not fit a uint80.
contract MockFaultyFeed {
    enum Fault {
        None,
        Reverts,
        ShortData,
        HugeData,
        RoundIdOutOfRange
    }

    error MockFeedBroken();

    uint8 public constant decimals = 8;
    int256 public constant INITIAL_ANSWER = 1e8;
    uint256 public constant HUGE_DATA_BYTES = 100_000;
    Fault public fault;

    /// @notice Makes every later `latestRoundData` call fail this way (None: answer again).
    function setFault(Fault fault_) external {
        fault = fault_;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        Fault current = fault;
        if (current == Fault.Reverts) revert MockFeedBroken();
        uint256 roundId = current == Fault.RoundIdOutOfRange ? uint256(type(uint80).max) + 1 : 1;
        uint256 size = current == Fault.ShortData ? 64 : current == Fault.HugeData ? HUGE_DATA_BYTES : 160;
        int256 answer = INITIAL_ANSWER;
        assembly ("memory-safe") {
            let words := mload(0x40)
            mstore(words, roundId)
            mstore(add(words, 0x20), answer)
            mstore(add(words, 0x40), timestamp())
            mstore(add(words, 0x60), timestamp())
            mstore(add(words, 0x80), 1)
            return(words, size)
        }
    }
}
