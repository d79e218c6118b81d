// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockToken} from "./MockToken.sol";
import {Vault} from "./Vault.sol";

/// @title MockReentrantToken
/// @notice Test double: a token that is also its own attacker. Once armed, a transfer
///         out of the vault (withdraw) or into it (deposit) calls `vault.withdraw` from
///         inside the transfer, trying to take the same balance twice.
contract MockReentrantToken is MockToken {
    Vault public vault;
    bool public armed;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) MockToken(name_, symbol_, decimals_) {}

    /// @notice Deposits `amount` of this token, held by this contract, into `vault_`.
    function depositInto(Vault vault_, uint256 amount) external {
        vault = vault_;
        _approve(address(this), address(vault_), amount);
        vault_.deposit(address(this), amount);
    }

    /// @notice Arms the re-entry and withdraws `amount` from the vault.
    function attackWithdraw(uint256 amount) external {
        armed = true;
        vault.withdraw(address(this), amount);
        armed = false;
    }

    /// @notice Arms the re-entry and deposits `amount` (held by this contract) into the vault.
    function attackDeposit(uint256 amount) external {
        _approve(address(this), address(vault), amount);
        armed = true;
        vault.deposit(address(this), amount);
        armed = false;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && (from == address(vault) || to == address(vault))) {
            armed = false;
            vault.withdraw(address(this), value);
        }
    }
}
