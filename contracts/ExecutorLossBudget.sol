// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title ExecutorLossBudget
/// @notice Each user's daily loss budget: what keepers may lose of the user's value
///         against the oracle, counted in the same call that trades.
/// @dev Like dHEDGE's SlippageAccumulator (a per-manager figure in one slot that decays
///      over time and is checked on every swap), but per user, in USD rather than a
///      share, set by the user, and draining at a constant rate (the budget per window),
///      so over any window keepers can cost a user at most twice the budget, and on
///      average at most the budget per day.
abstract contract ExecutorLossBudget {
    /// @notice A user's loss budget against the oracle, USD with 18 decimals (one slot).
    struct LossBudget {
        uint96 dailyBudgetUsd; // most the user lets keepers lose per LOSS_WINDOW
        uint96 spentUsd; // losses counted, as of `updatedAt`; drains at dailyBudgetUsd per window
        uint64 updatedAt;
    }

    // ---------------------------------------------------------------- errors
    /// @notice A trade losing `lossUsd` against the oracle would take `user` past their daily
    ///         budget `budgetUsd`, of which `spentUsd` is spent (USD, 18 decimals).
    error ExecutorLossBudgetExceeded(address user, uint256 lossUsd, uint256 spentUsd, uint256 budgetUsd);

    // ---------------------------------------------------------------- events
    /// @notice `user` set the most keepers may lose of their value per day, in USD (18 decimals).
    event DailyLossBudgetUpdated(address indexed user, uint96 dailyBudgetUsd);

    // ------------------------------------------------------------- constants
    /// @notice The loss budget's window: spent losses drain at the daily budget per window.
    uint256 public constant LOSS_WINDOW = 1 days;

    // --------------------------------------------------------------- storage
    mapping(address user => LossBudget) private _lossBudgets;

    // -------------------------------------------------------- external writes
    /// @notice Sets the most keepers may lose of the caller's value per day, against the oracle.
    /// @dev Losses drain from the count at `dailyBudgetUsd` per LOSS_WINDOW, so over any window
    ///      keepers can cost the caller at most twice the budget, and the budget per day on average.
    /// @param dailyBudgetUsd USD with 18 decimals; zero allows no losing trade.
    function setDailyLossBudget(uint96 dailyBudgetUsd) external {
        LossBudget storage budget = _lossBudgets[msg.sender];
        (budget.spentUsd, budget.updatedAt) = (uint96(_spentNow(budget)), uint64(block.timestamp));
        budget.dailyBudgetUsd = dailyBudgetUsd;
        emit DailyLossBudgetUpdated(msg.sender, dailyBudgetUsd);
    }

    // ------------------------------------------------------------------ views
    /// @notice `user`'s daily loss budget and the losses counted in it right now.
    /// @param user The user.
    /// @return dailyBudgetUsd The budget (USD, 18 decimals).
    /// @return spentUsd Losses still counted after draining (USD, 18 decimals).
    function lossBudget(address user) external view returns (uint256 dailyBudgetUsd, uint256 spentUsd) {
        LossBudget memory budget = _lossBudgets[user];
        return (budget.dailyBudgetUsd, _spentNow(budget));
    }

    // --------------------------------------------------------------- internal
    /// @dev Counts what a fill of `amountOut` lost against `oracleAmountOut`, the oracle value
    ///      of an input worth `valueUsd`: the USD value of the shortfall, rounded up. Reverts
    ///      if that takes `user` past their budget.
    function _countLoss(address user, uint256 valueUsd, uint256 oracleAmountOut, uint256 amountOut) internal {
        if (amountOut >= oracleAmountOut) return;
        uint256 lossUsd = Math.mulDiv(valueUsd, oracleAmountOut - amountOut, oracleAmountOut, Math.Rounding.Ceil);
        LossBudget memory budget = _lossBudgets[user];
        uint256 spent = _spentNow(budget);
        if (spent + lossUsd > budget.dailyBudgetUsd) {
            revert ExecutorLossBudgetExceeded(user, lossUsd, spent, budget.dailyBudgetUsd);
        }
        // Fits: at most dailyBudgetUsd, a uint96.
        _lossBudgets[user] = LossBudget(budget.dailyBudgetUsd, uint96(spent + lossUsd), uint64(block.timestamp));
    }

    /// @dev The counted losses after draining at the budget's rate since the last update.
    function _spentNow(LossBudget memory budget) private view returns (uint256) {
        uint256 drained = Math.mulDiv(budget.dailyBudgetUsd, block.timestamp - budget.updatedAt, LOSS_WINDOW);
        return drained >= budget.spentUsd ? 0 : budget.spentUsd - drained;
    }
}
