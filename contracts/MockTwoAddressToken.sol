// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockToken} from "./MockToken.sol";

/// @title MockTwoAddressToken
/// @notice Test double: a token reachable at two addresses (as some upgraded tokens were):
///         this contract and its `SECOND_ADDRESS`, which moves the same balances.
contract MockTwoAddressToken is MockToken {
    // slither-disable-next-line naming-convention
    MockTokenSecondAddress public immutable SECOND_ADDRESS;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) MockToken(name_, symbol_, decimals_) {
        SECOND_ADDRESS = new MockTokenSecondAddress(this);
    }

    /// @notice Moves `amount` from `from` to `to`; only the second address may call it.
    function transferBySecondAddress(address from, address to, uint256 amount) external {
        require(msg.sender == address(SECOND_ADDRESS), "second address only");
        _transfer(from, to, amount);
    }
}

/// @title MockTokenSecondAddress
/// @notice The second address of a MockTwoAddressToken: same balances, same transfers.
contract MockTokenSecondAddress {
    MockTwoAddressToken public immutable TOKEN;

    constructor(MockTwoAddressToken token) {
        TOKEN = token;
    }

    function balanceOf(address account) external view returns (uint256) {
        return TOKEN.balanceOf(account);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        TOKEN.transferBySecondAddress(msg.sender, to, amount);
        return true;
    }
}
