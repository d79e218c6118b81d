// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockToken} from "./MockToken.sol";

/// @title MockFeeOnTransferToken
/// @notice Test double: burns `FEE_BPS` of every transfer, so the receiver gets less
///         than was sent (like some deflationary tokens).
contract MockFeeOnTransferToken is MockToken {
    uint256 public constant FEE_BPS = 100;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) MockToken(name_, symbol_, decimals_) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * FEE_BPS) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
