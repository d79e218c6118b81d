// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ExecutorOracle} from "./ExecutorOracle.sol";

/// @title ExecutorExits
/// @notice Each user's protective exits, per token: a stop-loss price, a take-profit price and
///         a trailing stop, set from the user's own wallet, that sell the user's whole vault
///         balance of the token for the quote token (`Executor.executeExit`) when one holds
///         at the current valid oracle price.
/// @dev Prices are USD per whole token with 18 decimals, the feed's answer scaled as in every
///      quote. A protection's start is when the user set it or when a keeper trade last bought
///      the token for the user (`Executor.executeTrade`); the trailing stop's high-water mark is
///      a feed round after the start that the caller names, so no one pokes the contract. An
///      exit spends the protection until the next start. A non-keeper arms an exit with a first
///      call that proves the trigger and executes it, paid the user's bounty, once the user's
///      grace period has passed and a trigger holds again.
abstract contract ExecutorExits is ExecutorOracle {
    /// @notice What made an exit trigger (None: nothing holds).
    enum ExitTrigger {
        None,
        StopLoss,
        TakeProfit,
        TrailingStop
    }

    /// @notice A user's protection of one token (two storage slots).
    struct ExitProtection {
        uint128 stopLossUsd; // triggers at a price at or below; 0: off
        uint128 takeProfitUsd; // triggers at a price at or above; 0: off
        uint16 trailingBps; // triggers at a price at or below the high-water mark less this; 0: off
        uint16 bountyBps; // of the exit's output, paid to a non-keeper who executes it
        uint32 gracePeriod; // seconds from a non-keeper's arming to their execution
        uint64 startedAt; // set, or last bought for the user; 0: spent (an exit executed since)
        uint64 armedAt; // a non-keeper's first call that proved a trigger; 0: not armed
        bool active; // some trigger is set
    }

    // ---------------------------------------------------------------- errors
    /// @notice A user asked for a bounty of `bountyBps`, above the bound `maxBps`.
    error ExecutorBountyAboveMax(uint256 bountyBps, uint256 maxBps);
    /// @notice A protection of `token` is invalid; `reason` names the field.
    error ExecutorInvalidProtection(address token, string reason);
    /// @notice `user` has no protection of `token`.
    error ExecutorNoProtection(address user, address token);
    /// @notice `user`'s exit of `token` executed since its start: it waits for a new one.
    error ExecutorExitUsed(address user, address token);
    /// @notice No trigger of `user`'s protection of `token` holds at `priceUsd` (18 decimals).
    error ExecutorExitNotTriggered(address user, address token, uint256 priceUsd);
    /// @notice The named round `roundId` was updated at `updatedAt`, before the protection's start `startedAt`.
    error ExecutorRoundBeforeStart(uint80 roundId, uint256 updatedAt, uint256 startedAt);
    /// @notice A non-keeper may execute `user`'s armed exit of `token` from `executableAt` on.
    error ExecutorExitInGracePeriod(address user, address token, uint256 executableAt);
    /// @notice A keeper may not buy `token` for `user` at `priceUsd`: their stop-loss or take-profit holds there.
    error ExecutorBuyTriggersExit(address user, address token, uint256 priceUsd);

    // ---------------------------------------------------------------- events
    /// @notice `user` set (or, all zero, removed) their protection of `token`; it starts now, unarmed.
    event ProtectionUpdated(
        address indexed user,
        address indexed token,
        uint128 stopLossUsd,
        uint128 takeProfitUsd,
        uint16 trailingBps,
        uint16 bountyBps,
        uint32 gracePeriod
    );
    /// @notice A keeper trade bought `token` for `user`: the protection starts again now, unarmed.
    event ProtectionRestarted(address indexed user, address indexed token);
    /// @notice `caller` proved `trigger` at `priceUsd` and armed `user`'s exit of `token`, executable
    ///         by a non-keeper from `executableAt` on.
    event ExitArmed(
        address indexed user,
        address indexed token,
        address indexed caller,
        ExitTrigger trigger,
        uint256 priceUsd,
        uint256 executableAt
    );
    /// @notice `caller` sold `user`'s whole balance `amountIn` of `token` for `amountOut` of the quote
    ///         token, of which `bounty` went to the caller; `priceUsd` (18 decimals) from `roundId`;
    ///         `highRoundId` the named high-water round (0: none).
    event ExitExecuted(
        address indexed user,
        address indexed token,
        address indexed caller,
        ExitTrigger trigger,
        uint256 amountIn,
        uint256 amountOut,
        uint256 bounty,
        uint256 priceUsd,
        uint80 roundId,
        uint80 highRoundId
    );

    // ------------------------------------------------------------- constants
    uint256 public constant MAX_BPS = 10_000;

    // --------------------------------------------------------------- storage
    mapping(address user => mapping(address token => ExitProtection)) private _protections;

    // -------------------------------------------------------- external writes
    /// @notice Sets the caller's protection of `token`; every trigger is optional (0: off), and
    ///         all three off removes it. It starts now, unarmed (a keeper buy of `token` for the
    ///         caller starts it again).
    /// @dev Prices are USD per whole token, 18 decimals. Reverts ExecutorBountyAboveMax above the
    ///      vault's MAX_BOUNTY_BPS, and ExecutorInvalidProtection for the quote token ("token"), a
    ///      trailing distance of 100% or more ("trailingBps") and a take-profit at or below the
    ///      stop-loss ("prices": one would always hold).
    /// @param token The token to protect (not the quote token, which exits sell into).
    /// @param stopLossUsd Exit at an oracle price at or below this.
    /// @param takeProfitUsd Exit at an oracle price at or above this.
    /// @param trailingBps Exit at a price at or below the highest since the start less this many bps.
    /// @param bountyBps Of the exit's output, paid to a non-keeper who executes the exit.
    /// @param gracePeriod Seconds a non-keeper waits between arming the exit and executing it.
    function setProtection(
        address token,
        uint128 stopLossUsd,
        uint128 takeProfitUsd,
        uint16 trailingBps,
        uint16 bountyBps,
        uint32 gracePeriod
    ) external {
        if (token == _quoteToken()) revert ExecutorInvalidProtection(token, "token");
        uint256 maxBounty = _maxBountyBps();
        if (bountyBps > maxBounty) revert ExecutorBountyAboveMax(bountyBps, maxBounty);
        if (trailingBps >= MAX_BPS) revert ExecutorInvalidProtection(token, "trailingBps");
        if (stopLossUsd != 0 && takeProfitUsd != 0 && takeProfitUsd <= stopLossUsd) {
            revert ExecutorInvalidProtection(token, "prices");
        }
        bool active = stopLossUsd != 0 || takeProfitUsd != 0 || trailingBps != 0;
        _protections[msg.sender][token] = ExitProtection(
            stopLossUsd, takeProfitUsd, trailingBps, bountyBps, gracePeriod, uint64(block.timestamp), 0, active
        );
        emit ProtectionUpdated(msg.sender, token, stopLossUsd, takeProfitUsd, trailingBps, bountyBps, gracePeriod);
    }

    // ------------------------------------------------------------------ views
    /// @notice `user`'s protection of `token` (all zero: none).
    /// @param user The user.
    /// @param token The token.
    /// @return The stored protection, with its start and arming times.
    function protection(address user, address token) external view returns (ExitProtection memory) {
        return _protections[user][token];
    }

    // --------------------------------------------------------------- internal
    /// @dev The token exits sell into.
    function _quoteToken() internal view virtual returns (address);

    /// @dev The most of an exit's output a bounty may be (the vault's bound).
    function _maxBountyBps() internal view virtual returns (uint256);

    /// @dev `user`'s protection of `token`, if it can exit: set, and not spent since its start.
    function _liveProtection(address user, address token) internal view returns (ExitProtection memory p) {
        p = _protections[user][token];
        if (!p.active) revert ExecutorNoProtection(user, token);
        if (p.startedAt == 0) revert ExecutorExitUsed(user, token);
    }

    /// @dev Which trigger holds at `priceUsd`, the current valid price from round `latestRoundId`:
    ///      the stop-loss (price <= stopLossUsd), else the take-profit (price >= takeProfitUsd),
    ///      else the trailing stop: the answer H of round `highRoundId` (0: not evaluated), a valid
    ///      round of the feed's current phase, at most the latest, updated at or after the start,
    ///      with price * MAX_BPS <= H * (MAX_BPS - trailingBps). Exact integers: no rounding. A lower
    ///      H only makes the trailing stop hold later.
    function _exitTrigger(
        ExitProtection memory p,
        address token,
        uint256 priceUsd,
        uint80 latestRoundId,
        uint80 highRoundId
    ) internal view returns (ExitTrigger) {
        if (p.stopLossUsd != 0 && priceUsd <= p.stopLossUsd) return ExitTrigger.StopLoss;
        if (p.takeProfitUsd != 0 && priceUsd >= p.takeProfitUsd) return ExitTrigger.TakeProfit;
        if (p.trailingBps != 0 && highRoundId != 0) {
            (uint256 highUsd, uint256 updatedAt) = _roundPrice(token, highRoundId, latestRoundId);
            if (updatedAt < p.startedAt) revert ExecutorRoundBeforeStart(highRoundId, updatedAt, p.startedAt);
            if (priceUsd * MAX_BPS <= highUsd * (MAX_BPS - p.trailingBps)) return ExitTrigger.TrailingStop;
        }
        return ExitTrigger.None;
    }

    /// @dev A non-keeper's call on a triggered exit: the first arms it (and returns true only with a
    ///      zero grace period); a later one returns true once the grace period since the arming has
    ///      passed and reverts ExecutorExitInGracePeriod before.
    function _armedPastGrace(address user, address token, ExitProtection memory p, ExitTrigger trigger, uint256 priceUsd)
        internal
        returns (bool)
    {
        if (p.armedAt == 0) {
            _protections[user][token].armedAt = uint64(block.timestamp);
            emit ExitArmed(user, token, msg.sender, trigger, priceUsd, block.timestamp + p.gracePeriod);
            return p.gracePeriod == 0;
        }
        uint256 executableAt = uint256(p.armedAt) + p.gracePeriod;
        if (block.timestamp < executableAt) revert ExecutorExitInGracePeriod(user, token, executableAt);
        return true;
    }

    /// @dev Marks `user`'s exit of `token` executed: spent and unarmed until the next start.
    function _spendExit(address user, address token) internal {
        ExitProtection storage p = _protections[user][token];
        (p.startedAt, p.armedAt) = (0, 0);
    }

    /// @dev A keeper trade buys `token` for `user` at `priceUsd`: a protection starts again (the
    ///      trailing stop's "last bought"), unarmed and unspent. Refused where the stop-loss or the
    ///      take-profit holds: such a buy would only feed an exit (and a keeper could loop them).
    function _restartOnBuy(address user, address token, uint256 priceUsd) internal {
        ExitProtection storage p = _protections[user][token];
        if (!p.active) return;
        uint256 stopLoss = p.stopLossUsd;
        uint256 takeProfit = p.takeProfitUsd;
        if ((stopLoss != 0 && priceUsd <= stopLoss) || (takeProfit != 0 && priceUsd >= takeProfit)) {
            revert ExecutorBuyTriggersExit(user, token, priceUsd);
        }
        (p.startedAt, p.armedAt) = (uint64(block.timestamp), 0);
        emit ProtectionRestarted(user, token);
    }
}
