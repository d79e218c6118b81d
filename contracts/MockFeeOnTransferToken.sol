// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockToken} from "./MockToken.sol";

/// @title MockFeeOnTransferToken
/// @notice Test double: burns `feeBps` of every transfer (1% unless changed), so the
///         receiver gets less than was sent (like some deflationary tokens); or, with
///         `feeOnTop`, the receiver gets the whole value and the sender pays the fee on top.
contract MockFeeOnTransferToken is MockToken {
    uint256 public feeBps = 100;
    bool public feeOnTop;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) MockToken(name_, symbol_, decimals_) {}

    /// @notice Sets the share of every transfer that is burnt (10,000 burns it all).
    function setFeeBps(uint256 feeBps_) external {
        require(feeBps_ <= 10_000, "fee above 100%");
        feeBps = feeBps_;
    }

    /// @notice Charges the fee to the sender on top of the value instead of out of it.
    function setFeeOnTop(bool feeOnTop_) external {
        feeOnTop = feeOnTop_;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * feeBps) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, feeOnTop ? value : value - fee);
    }
}
