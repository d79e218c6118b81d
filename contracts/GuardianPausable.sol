// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title GuardianPausable
/// @notice Two-step ownership plus a guardian: the owner or the guardian can pause
///         (the on-chain kill switch), only the owner can unpause.
/// @dev Shared by Vault and Executor so that both kill switches behave the same way.
abstract contract GuardianPausable is Ownable2Step, Pausable {
    // ---------------------------------------------------------------- errors
    /// @notice `caller` is neither the owner nor the guardian.
    error GuardianUnauthorized(address caller);
    /// @notice Ownership cannot be renounced: with no owner a pause could never be lifted.
    error GuardianRenounceDisabled();

    // ---------------------------------------------------------------- events
    /// @notice The guardian changed from `previousGuardian` to `newGuardian`.
    event GuardianUpdated(address indexed previousGuardian, address indexed newGuardian);

    // --------------------------------------------------------------- storage
    address private _guardian;

    // ----------------------------------------------------------- constructor
    constructor(address initialOwner) Ownable(initialOwner) {}

    // -------------------------------------------------------- external writes
    /// @notice Sets the account that may pause besides the owner.
    /// @param newGuardian The new guardian; the zero address removes the role.
    // slither-disable-next-line missing-zero-check
    function setGuardian(address newGuardian) external onlyOwner {
        emit GuardianUpdated(_guardian, newGuardian);
        _guardian = newGuardian;
    }

    /// @notice Pauses the contract; callable by the owner or the guardian.
    function pause() external {
        if (msg.sender != owner() && msg.sender != _guardian) revert GuardianUnauthorized(msg.sender);
        _pause();
    }

    /// @notice Lifts a pause; only the owner may do this, so a compromised guardian
    ///         can stop trading but never restart it.
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Disabled: an owner-less contract could never be unpaused or reconfigured.
    /// @dev Hand ownership over with `transferOwnership` + `acceptOwnership` instead.
    function renounceOwnership() public view override onlyOwner {
        revert GuardianRenounceDisabled();
    }

    // ------------------------------------------------------------------ views
    /// @notice The account that may pause besides the owner.
    /// @return The guardian address (zero when none is set).
    function guardian() external view returns (address) {
        return _guardian;
    }
}
