// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockToken} from "./MockToken.sol";

/// @title MockRebasingToken
/// @notice Test double: an ERC-20 whose balances all scale by one factor that `rebase`
///         changes (like an elastic-supply or slashed staking token). Holders keep shares;
///         balanceOf = shares * scale / 1e18, so a rebase down shrinks every balance at once.
contract MockRebasingToken is MockToken {
    uint256 private constant ONE = 1e18;
    uint256 public scale = ONE;
    mapping(address account => uint256) private _shares;
    uint256 private _totalShares;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) MockToken(name_, symbol_, decimals_) {}

    /// @notice Multiplies every balance by `numerator` / `denominator` (a rebase).
    function rebase(uint256 numerator, uint256 denominator) external {
        scale = (scale * numerator) / denominator;
    }

    /// @notice The account's balance at the current scale.
    function balanceOf(address account) public view override returns (uint256) {
        return (_shares[account] * scale) / ONE;
    }

    /// @notice The total supply at the current scale.
    function totalSupply() public view override returns (uint256) {
        return (_totalShares * scale) / ONE;
    }

    function _update(address from, address to, uint256 value) internal override {
        // Rounded down, as real rebasing tokens do: a transfer may move a unit less than `value`.
        uint256 shares = (value * ONE) / scale;
        if (from == address(0)) {
            _totalShares += shares;
        } else {
            uint256 have = _shares[from];
            if (have < shares) revert ERC20InsufficientBalance(from, balanceOf(from), value);
            _shares[from] = have - shares;
        }
        if (to == address(0)) {
            _totalShares -= shares;
        } else {
            _shares[to] += shares;
        }
        emit Transfer(from, to, value);
    }
}
