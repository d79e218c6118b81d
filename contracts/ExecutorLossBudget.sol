// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title ExecutorLossBudget
/// @notice Each user's daily loss budget B: what keepers may lose of the user's value
///         against the oracle in any 24 hours, counted in the same call that trades.
/// @dev Like dHEDGE's SlippageAccumulator (a per-manager figure in one slot that decays
///      over time and is checked on every swap), but per user, in USD rather than a
///      share, and set by the user. The counted losses may reach B/2 and drain at B/2 per
///      LOSS_WINDOW, so losses in any window of t seconds are at most B/2 + B/2 * t /
///      LOSS_WINDOW: at most B in any 24 hours (`maxLossWithin` reads the bound for any t).
abstract contract ExecutorLossBudget {
    /// @notice A user's loss budget against the oracle, USD with 18 decimals (one slot).
    struct LossBudget {
        uint96 dailyBudgetUsd; // most the user lets keepers lose per LOSS_WINDOW
        uint96 spentUsd; // losses counted, as of `updatedAt`; at most half the budget, drains at half per window
        uint64 updatedAt;
    }

    // ---------------------------------------------------------------- errors
    /// @notice A trade losing `lossUsd` against the oracle would take the losses counted for `user`,
    ///         `spentUsd`, past half their daily budget `budgetUsd` (USD, 18 decimals).
    error ExecutorLossBudgetExceeded(address user, uint256 lossUsd, uint256 spentUsd, uint256 budgetUsd);

    // ---------------------------------------------------------------- events
    /// @notice `user` set the most keepers may lose of their value per day, in USD (18 decimals).
    event DailyLossBudgetUpdated(address indexed user, uint96 dailyBudgetUsd);

    // ------------------------------------------------------------- constants
    /// @notice The loss budget's window: losses in any window are at most the daily budget.
    uint256 public constant LOSS_WINDOW = 1 days;

    // --------------------------------------------------------------- storage
    mapping(address user => LossBudget) private _lossBudgets;

    // -------------------------------------------------------- external writes
    /// @notice Sets the most keepers may lose of the caller's value in any 24 hours, against the oracle.
    /// @dev Counted losses may reach half the budget and drain at half the budget per LOSS_WINDOW
    ///      (`maxLossWithin` gives the bound for any window).
    /// @param dailyBudgetUsd USD with 18 decimals; zero allows no losing trade.
    function setDailyLossBudget(uint96 dailyBudgetUsd) external {
        LossBudget storage budget = _lossBudgets[msg.sender];
        (budget.spentUsd, budget.updatedAt) = (uint96(_spentNow(budget)), uint64(block.timestamp));
        budget.dailyBudgetUsd = dailyBudgetUsd;
        emit DailyLossBudgetUpdated(msg.sender, dailyBudgetUsd);
    }

    // ------------------------------------------------------------------ views
    /// @notice `user`'s daily loss budget and the losses counted in it right now (at most half the budget).
    /// @param user The user.
    /// @return dailyBudgetUsd The budget (USD, 18 decimals).
    /// @return spentUsd Losses still counted after draining (USD, 18 decimals).
    function lossBudget(address user) external view returns (uint256 dailyBudgetUsd, uint256 spentUsd) {
        LossBudget memory budget = _lossBudgets[user];
        return (budget.dailyBudgetUsd, _spentNow(budget));
    }

    /// @notice The most keepers can make `user` lose against the oracle within any `window` seconds,
    ///         at the user's current budget: B/2 + B/2 * window / LOSS_WINDOW, rounded up.
    /// @param user The user.
    /// @param window Length of the window, seconds (LOSS_WINDOW: the daily budget itself).
    /// @return USD with 18 decimals.
    function maxLossWithin(address user, uint256 window) external view returns (uint256) {
        uint256 half = _lossBudgets[user].dailyBudgetUsd / 2;
        return half + Math.mulDiv(half, window, LOSS_WINDOW, Math.Rounding.Ceil);
    }

    // --------------------------------------------------------------- internal
    /// @dev Counts what a fill of `amountOut` lost against `oracleAmountOut`, the oracle value
    ///      of an input worth `valueUsd`: the USD value of the shortfall, rounded up. A trade that
    ///      takes `user` past their budget reverts; a protective exit (`isExit`) does not: the user
    ///      set it, and the oracle floor (their slippage) bounds its loss. It fills the budget
    ///      instead (the counted losses stop at half the budget), so keeper trades that lose wait.
    function _countLoss(address user, uint256 valueUsd, uint256 oracleAmountOut, uint256 amountOut, bool isExit)
        internal
    {
        if (amountOut >= oracleAmountOut) return;
        uint256 lossUsd = Math.mulDiv(valueUsd, oracleAmountOut - amountOut, oracleAmountOut, Math.Rounding.Ceil);
        LossBudget memory budget = _lossBudgets[user];
        uint256 spent = _spentNow(budget);
        uint256 half = budget.dailyBudgetUsd / 2;
        if (spent + lossUsd > half) {
            if (!isExit) revert ExecutorLossBudgetExceeded(user, lossUsd, spent, budget.dailyBudgetUsd);
            lossUsd = spent < half ? half - spent : 0; // a lowered budget can leave spent above half
        }
        // Fits a uint96: at most half of dailyBudgetUsd, or what was stored before.
        _lossBudgets[user] = LossBudget(budget.dailyBudgetUsd, uint96(spent + lossUsd), uint64(block.timestamp));
    }

    /// @dev The counted losses after draining at half the budget per window since the last update.
    function _spentNow(LossBudget memory budget) private view returns (uint256) {
        uint256 drained = Math.mulDiv(budget.dailyBudgetUsd / 2, block.timestamp - budget.updatedAt, LOSS_WINDOW);
        return drained >= budget.spentUsd ? 0 : budget.spentUsd - drained;
    }
}
