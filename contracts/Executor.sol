// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ExecutorExits} from "./ExecutorExits.sol";
import {ExecutorLossBudget} from "./ExecutorLossBudget.sol";
import {SentinelManaged} from "./SentinelManaged.sol";
import {Vault} from "./Vault.sol";

/// @title Executor
/// @notice Lets allow-listed keepers swap a user's vault balance through an
///         allow-listed Uniswap-V2-compatible router, only within the user's own
///         limits and only at a price that both tokens' Chainlink feeds confirm.
/// @dev A keeper chooses `minAmountOut`, but it must be at least the oracle value of
///      `amountIn` less the user's own slippage limit, so a compromised keeper can cost
///      a user at most that slippage per trade, within the user's per-trade maximum, and
///      at most the user's own daily loss budget in total. A keeper buys for a user only
///      the quote token or a token the user allowed (`setBuyAllowed`), never below the
///      user's minimum trade value, at prices no older than the user's own maximum oracle
///      age (when tighter than the feed's). The user's protective exits (ExecutorExits) sell a
///      whole balance for the quote token when a trigger holds (`executeExit`): any keeper at
///      once, anyone after the user's grace period, for the user's bounty. Admin functions are
///      `restricted`: the AccessManager decides who may call them and after which delay.
contract Executor is ExecutorExits, ExecutorLossBudget, Pausable, ReentrancyGuardTransient {
    /// @notice A user's own trading limits (one storage slot).
    struct UserLimits {
        bool enabled;
        uint16 maxSlippageBps;
        uint32 minTradeInterval; // seconds between two trades; 0: no limit
        uint64 lastTradeAt; // kept only while minTradeInterval is set
        uint32 maxOracleAge; // seconds; 0: each feed's own maximum age
        uint96 minTradeValueUsd; // USD, 18 decimals; 0: no minimum
    }

    /// @dev One exit on its way: whose, what, the proof and the pay (kept in memory: the stack is full).
    struct ExitOrder {
        address user;
        address token;
        uint80 highRoundId;
        uint256 amountIn;
        ExitTrigger trigger;
        uint16 bountyBps;
    }

    // ---------------------------------------------------------------- errors
    /// @notice `caller` is not an allow-listed keeper.
    error ExecutorUnauthorizedKeeper(address caller);
    /// @notice `router` is not on the router allow-list.
    error ExecutorRouterNotAllowed(address router);
    /// @notice `amountIn` was zero.
    error ExecutorZeroAmount();
    /// @notice The trade's `deadline` is before the block's `timestamp`.
    error ExecutorExpired(uint256 deadline, uint256 timestamp);
    /// @notice `tradeId` has already executed (idempotency).
    error ExecutorTradeIdUsed(bytes32 tradeId);
    /// @notice `user` has not opted in to keeper trading.
    error ExecutorUserNotEnabled(address user);
    /// @notice `amount` exceeds `user`'s per-trade `limit` for `token`.
    error ExecutorAmountAboveUserLimit(address user, address token, uint256 amount, uint256 limit);
    /// @notice `user` allows one trade per interval; the next is allowed at `nextTradeAt`.
    error ExecutorTradeTooSoon(address user, uint256 nextTradeAt);
    /// @notice A user asked for `slippageBps`, above the bound `maxBps`.
    error ExecutorSlippageAboveMax(uint256 slippageBps, uint256 maxBps);
    /// @notice `minAmountOut` is below the oracle value less the user's slippage.
    error ExecutorMinOutBelowOracleFloor(uint256 minAmountOut, uint256 oracleFloor);
    /// @notice `user` has not allowed keepers to buy `token` for them (setBuyAllowed).
    error ExecutorBuyNotAllowed(address user, address token);
    /// @notice The trade is worth `valueUsd`, below `user`'s minimum trade value `minValueUsd` (USD, 18 decimals).
    error ExecutorTradeValueBelowMinimum(address user, uint256 valueUsd, uint256 minValueUsd);
    /// @notice A user asked for a maximum oracle age of `maxOracleAge` s, above the bound `maxAge`.
    error ExecutorOracleAgeAboveMax(uint256 maxOracleAge, uint256 maxAge);

    // ---------------------------------------------------------------- events
    /// @notice `keeper` was added to (`allowed`) or removed from the keeper allow-list.
    event KeeperUpdated(address indexed keeper, bool allowed);
    /// @notice `router` was added to (`allowed`) or removed from the router allow-list.
    event RouterUpdated(address indexed router, bool allowed);
    /// @notice `user` opted in or out, or changed their slippage limit.
    event UserLimitsUpdated(address indexed user, bool enabled, uint16 maxSlippageBps);
    /// @notice `user` changed their per-trade maximum for `token`.
    event MaxAmountPerTradeUpdated(address indexed user, address indexed token, uint256 maxAmount);
    /// @notice `user` changed the least time between two of their trades.
    event MinTradeIntervalUpdated(address indexed user, uint32 minTradeInterval);
    /// @notice `user` allowed (`allowed`) or forbade keepers to buy `token` for them.
    event BuyAllowedUpdated(address indexed user, address indexed token, bool allowed);
    /// @notice `user` changed the least value of a trade of their balance (USD, 18 decimals).
    event MinTradeValueUpdated(address indexed user, uint96 minTradeValueUsd);
    /// @notice `user` changed the oldest oracle answer their trades accept (0: the feeds' own).
    event MaxOracleAgeUpdated(address indexed user, uint32 maxOracleAge);
    /// @notice A keeper traded `user`'s balance; prices are USD with 18 decimals.
    event TradeExecuted(
        bytes32 indexed tradeId,
        address indexed user,
        address indexed keeper,
        address tokenIn,
        address tokenOut,
        uint256 amountIn,
        uint256 amountOut,
        uint256 priceIn,
        uint256 priceOut,
        uint80 roundIn,
        uint80 roundOut
    );

    // ------------------------------------------------- constants & immutables
    /// @notice Most slippage a user may allow: a bound against fat fingers.
    uint16 public constant MAX_USER_SLIPPAGE_BPS = 1_000;
    /// @notice The vault whose balances this executor swaps.
    // slither-disable-next-line naming-convention
    Vault public immutable VAULT;
    /// @notice The quote token (USDC): keepers may buy it for every user, any other token only
    ///         for users who allowed it.
    // slither-disable-next-line naming-convention
    address public immutable QUOTE_TOKEN;

    // --------------------------------------------------------------- storage
    mapping(address user => UserLimits) private _userLimits;
    mapping(address user => mapping(address token => uint256)) private _maxAmountPerTrade;
    mapping(address user => mapping(address token => bool)) private _buyAllowed;
    mapping(address keeper => bool) private _keepers;
    mapping(address router => bool) private _routers;
    mapping(bytes32 tradeId => bool) private _usedTradeIds;

    // ----------------------------------------------------------- constructor
    /// @param manager The AccessManager that decides who may call the restricted functions.
    /// @param vault The vault whose balances this executor swaps.
    /// @param quoteToken The quote token, which keepers may buy for every user.
    constructor(address manager, Vault vault, address quoteToken) SentinelManaged(manager) {
        if (address(vault) == address(0) || quoteToken == address(0)) revert ExecutorZeroAddress();
        VAULT = vault;
        QUOTE_TOKEN = quoteToken;
    }

    // ---------------------------------------------------- keeper: the trade
    /// @notice Swaps `amountIn` of `user`'s vault balance of `tokenIn` for `tokenOut`.
    /// @dev Checks, in order: pause, keeper, deadline, router, tradeId, user opt-in,
    ///      per-trade limit, buy allow-list and trade interval, sequencer, both feeds (within
    ///      the user's maximum oracle age), minimum trade value, oracle floor, and for a buy of a
    ///      token the user protects, that its stop-loss and take-profit do not hold (the buy starts
    ///      that protection again). Then marks `tradeId` used, lets the vault swap (it credits the
    ///      measured output to `user`) and counts the loss against the oracle in the user's daily
    ///      budget, which it may not exceed.
    /// @param user Whose vault balance is traded; must have opted in.
    /// @param tokenIn Token sold.
    /// @param tokenOut Token bought.
    /// @param amountIn Amount of `tokenIn` to sell, within the user's per-trade limit.
    /// @param minAmountOut Least output accepted; at least the oracle floor.
    /// @param router Allow-listed Uniswap-V2-compatible router.
    /// @param deadline Unix time after which the trade is rejected.
    /// @param tradeId Idempotency key: a tradeId executes at most once.
    /// @return amountOut Amount of `tokenOut` credited to `user`.
    function executeTrade(
        address user,
        address tokenIn,
        address tokenOut,
        uint256 amountIn,
        uint256 minAmountOut,
        address router,
        uint256 deadline,
        bytes32 tradeId
    ) external whenNotPaused nonReentrant returns (uint256 amountOut) {
        if (!_keepers[msg.sender]) revert ExecutorUnauthorizedKeeper(msg.sender);
        if (deadline < block.timestamp) revert ExecutorExpired(deadline, block.timestamp);
        if (!_routers[router]) revert ExecutorRouterNotAllowed(router);
        if (_usedTradeIds[tradeId]) revert ExecutorTradeIdUsed(tradeId);
        if (amountIn == 0) revert ExecutorZeroAmount();
        UserLimits memory limits = _checkUserLimits(user, tokenIn, tokenOut, amountIn);

        OracleQuote memory prices = _quote(tokenIn, tokenOut, amountIn, limits.maxOracleAge);
        if (prices.valueUsd < limits.minTradeValueUsd) {
            revert ExecutorTradeValueBelowMinimum(user, prices.valueUsd, limits.minTradeValueUsd);
        }
        uint256 floor = _floor(prices.oracleAmountOut, limits.maxSlippageBps);
        if (minAmountOut < floor) revert ExecutorMinOutBelowOracleFloor(minAmountOut, floor);

        if (tokenOut != QUOTE_TOKEN) _restartOnBuy(user, tokenOut, prices.priceOut);
        _usedTradeIds[tradeId] = true;
        amountOut = VAULT.swap(user, tokenIn, tokenOut, amountIn, minAmountOut, router, deadline);
        // The loss is known only after the swap; nonReentrant here and in the vault guard it.
        // slither-disable-next-line reentrancy-benign
        _countLoss(user, prices.valueUsd, prices.oracleAmountOut, amountOut, false);
        emit TradeExecuted(
            tradeId, user, msg.sender, tokenIn, tokenOut, amountIn, amountOut,
            prices.priceIn, prices.priceOut, prices.roundIn, prices.roundOut
        );
    }

    // ------------------------------------------------ anyone: protective exits
    /// @notice Sells `user`'s whole vault balance of `token` for the quote token when their
    ///         protection's stop-loss, take-profit or trailing stop holds at the current oracle price.
    /// @dev Checks, in order: pause, deadline, router, a protection not spent since its start, a
    ///      non-zero balance, sequencer and the token's and quote token's feeds (within the user's
    ///      maximum oracle age), a trigger (`highRoundId` names the trailing stop's high-water
    ///      round; 0: the trailing stop is not evaluated). A keeper executes at once, without
    ///      bounty. Anyone else: the first call arms the exit and returns 0 (unless the grace
    ///      period is 0), a later one reverts ExecutorExitInGracePeriod until the grace period
    ///      since the arming has passed, then executes, paid `bountyBps` of the output (credited
    ///      in the vault). The swap's least output is the larger of `minAmountOut` and the oracle
    ///      floor (the user's slippage). Its loss against the oracle is counted in the user's
    ///      loss budget but never refused by it: the floor bounds it. Neither the opt-in nor the
    ///      per-trade limits apply: the exit is the user's own order. The exit spends the
    ///      protection until the user sets it again or a keeper buys the token for them.
    /// @param user Whose balance is sold.
    /// @param token The protected token.
    /// @param highRoundId A round of `token`'s feed after the protection's start (its proxy round id).
    /// @param minAmountOut Least output the caller accepts; the oracle floor applies if higher.
    /// @param router Allow-listed Uniswap-V2-compatible router.
    /// @param deadline Unix time after which the exit is rejected.
    /// @return amountOut The quote token bought (the bounty included); 0 when the call only armed.
    function executeExit(
        address user,
        address token,
        uint80 highRoundId,
        uint256 minAmountOut,
        address router,
        uint256 deadline
    ) external whenNotPaused nonReentrant returns (uint256 amountOut) {
        if (deadline < block.timestamp) revert ExecutorExpired(deadline, block.timestamp);
        if (!_routers[router]) revert ExecutorRouterNotAllowed(router);
        ExitOrder memory order = ExitOrder(user, token, highRoundId, 0, ExitTrigger.None, 0);
        (OracleQuote memory prices, bool due) = _proveExit(order);
        if (!due) return 0;
        _spendExit(user, token);
        minAmountOut = Math.max(minAmountOut, _floor(prices.oracleAmountOut, _userLimits[user].maxSlippageBps));
        uint256 bounty;
        (amountOut, bounty) = _sellForExit(order, minAmountOut, router, deadline);
        // As in executeTrade: the loss is known only after the swap.
        // slither-disable-next-line reentrancy-benign
        _countLoss(user, prices.valueUsd, prices.oracleAmountOut, amountOut, true);
        _emitExit(order, amountOut, bounty, prices);
    }

    // ----------------------------------------------------- users: own limits
    /// @notice Opts the caller in or out of keeper trading and sets their slippage limit.
    /// @param enabled True to let keepers trade the caller's balance.
    /// @param maxSlippageBps Most the caller accepts below the oracle value, in bps.
    function setUserLimits(bool enabled, uint16 maxSlippageBps) external {
        if (maxSlippageBps > MAX_USER_SLIPPAGE_BPS) {
            revert ExecutorSlippageAboveMax(maxSlippageBps, MAX_USER_SLIPPAGE_BPS);
        }
        UserLimits storage limits = _userLimits[msg.sender];
        limits.enabled = enabled;
        limits.maxSlippageBps = maxSlippageBps;
        emit UserLimitsUpdated(msg.sender, enabled, maxSlippageBps);
    }

    /// @notice Sets the least time between two keeper trades of the caller's balance.
    /// @dev With the per-trade maximum and slippage limit this bounds what a
    ///      compromised keeper can cost the caller per day, not only per trade.
    /// @param minTradeInterval Seconds; zero removes the limit.
    function setMinTradeInterval(uint32 minTradeInterval) external {
        _userLimits[msg.sender].minTradeInterval = minTradeInterval;
        emit MinTradeIntervalUpdated(msg.sender, minTradeInterval);
    }

    /// @notice Sets the most of `token` a keeper may sell from the caller's balance in one trade.
    /// @param token The token sold.
    /// @param maxAmount Per-trade maximum in `token` units; zero forbids selling it.
    function setMaxAmountPerTrade(address token, uint256 maxAmount) external {
        _maxAmountPerTrade[msg.sender][token] = maxAmount;
        emit MaxAmountPerTradeUpdated(msg.sender, token, maxAmount);
    }

    /// @notice Allows or forbids keepers to buy `token` for the caller (the quote token is always allowed).
    /// @param token The token bought.
    /// @param allowed True to let keepers buy it with the caller's balance.
    function setBuyAllowed(address token, bool allowed) external {
        _buyAllowed[msg.sender][token] = allowed;
        emit BuyAllowedUpdated(msg.sender, token, allowed);
    }

    /// @notice Sets the least value of a keeper trade of the caller's balance, at the oracle.
    /// @dev Bounds how many trades a keeper can make of a balance (each pays its own rounding
    ///      and pool fee); zero removes the minimum.
    /// @param minTradeValueUsd USD with 18 decimals.
    function setMinTradeValue(uint96 minTradeValueUsd) external {
        _userLimits[msg.sender].minTradeValueUsd = minTradeValueUsd;
        emit MinTradeValueUpdated(msg.sender, minTradeValueUsd);
    }

    /// @notice Sets the oldest feed answer the caller's trades accept, when tighter than the feed's own.
    /// @dev The loss budget counts losses against the oracle, so a lagging feed's lag is not
    ///      counted: a tighter age bounds it. Reverts ExecutorOracleAgeAboveMax above MAX_FEED_AGE.
    /// @param maxOracleAge Seconds; zero: each feed's own maximum age.
    function setMaxOracleAge(uint32 maxOracleAge) external {
        if (maxOracleAge > MAX_FEED_AGE) revert ExecutorOracleAgeAboveMax(maxOracleAge, MAX_FEED_AGE);
        _userLimits[msg.sender].maxOracleAge = maxOracleAge;
        emit MaxOracleAgeUpdated(msg.sender, maxOracleAge);
    }

    // ---------------------------------------------- admin (restricted, see keepers/access.py)
    /// @notice Adds `keeper` to the keeper allow-list (a delayed power).
    /// @param keeper The keeper account.
    function addKeeper(address keeper) external restricted {
        if (keeper == address(0)) revert ExecutorZeroAddress();
        _keepers[keeper] = true;
        emit KeeperUpdated(keeper, true);
    }

    /// @notice Removes `keeper` from the keeper allow-list at once.
    /// @param keeper The keeper account.
    function removeKeeper(address keeper) external restricted {
        _keepers[keeper] = false;
        emit KeeperUpdated(keeper, false);
    }

    /// @notice Adds `router` to the router allow-list (a delayed power).
    /// @param router A Uniswap-V2-compatible router.
    function addRouter(address router) external restricted {
        if (router == address(0)) revert ExecutorZeroAddress();
        _routers[router] = true;
        emit RouterUpdated(router, true);
    }

    /// @notice Removes `router` from the router allow-list at once.
    /// @param router The router.
    function removeRouter(address router) external restricted {
        _routers[router] = false;
        emit RouterUpdated(router, false);
    }

    /// @notice Stops trading at once (the kill switch).
    function pause() external restricted {
        _pause();
    }

    /// @notice Lets trading resume.
    function unpause() external restricted {
        _unpause();
    }

    // ------------------------------------------------------------------ views
    /// @notice Least `minAmountOut` that `executeTrade` accepts for `user` right now.
    /// @param user The user whose slippage limit applies.
    /// @param tokenIn Token sold.
    /// @param tokenOut Token bought.
    /// @param amountIn Amount of `tokenIn`.
    /// @return The oracle floor in `tokenOut` units.
    function oracleFloor(address user, address tokenIn, address tokenOut, uint256 amountIn)
        external
        view
        returns (uint256)
    {
        UserLimits memory limits = _userLimits[user];
        return _floor(_quote(tokenIn, tokenOut, amountIn, limits.maxOracleAge).oracleAmountOut, limits.maxSlippageBps);
    }

    /// @notice Which trigger of `user`'s protection of `token` holds right now, and the price.
    /// @dev The checks of `executeExit` but the caller, balance and router: reverts with their
    ///      named errors (a spent protection, a feed check, a bad `highRoundId`).
    /// @param user The user.
    /// @param token The protected token.
    /// @param highRoundId The trailing stop's high-water round (0: not evaluated).
    /// @return trigger The trigger that holds (None: none).
    /// @return priceUsd The current price of `token`, USD with 18 decimals.
    function exitTrigger(address user, address token, uint80 highRoundId)
        external
        view
        returns (ExitTrigger trigger, uint256 priceUsd)
    {
        OracleQuote memory prices = _quote(token, QUOTE_TOKEN, 0, _userLimits[user].maxOracleAge);
        trigger = _exitTrigger(_liveProtection(user, token), token, prices.priceIn, prices.roundIn, highRoundId);
        priceUsd = prices.priceIn;
    }

    /// @notice `user`'s opt-in, slippage limit, trade interval, last trade time, maximum oracle
    ///         age and minimum trade value.
    /// @param user The user.
    /// @return The stored limits.
    function userLimits(address user) external view returns (UserLimits memory) {
        return _userLimits[user];
    }

    /// @notice Most of `token` a keeper may sell for `user` in one trade.
    /// @param user The user.
    /// @param token The token sold.
    /// @return The limit in `token` units.
    function maxAmountPerTrade(address user, address token) external view returns (uint256) {
        return _maxAmountPerTrade[user][token];
    }

    /// @notice Whether keepers may buy `token` for `user`.
    /// @param user The user.
    /// @param token The token bought.
    /// @return True for the quote token and for tokens the user allowed.
    function isBuyAllowed(address user, address token) external view returns (bool) {
        return token == QUOTE_TOKEN || _buyAllowed[user][token];
    }

    /// @notice Whether `keeper` may call `executeTrade`.
    /// @param keeper The account.
    /// @return True when allow-listed.
    function isKeeper(address keeper) external view returns (bool) {
        return _keepers[keeper];
    }

    /// @notice Whether trades may go through `router`.
    /// @param router The router.
    /// @return True when allow-listed.
    function isRouter(address router) external view returns (bool) {
        return _routers[router];
    }

    /// @notice Whether `tradeId` has already executed.
    /// @param tradeId The idempotency key.
    /// @return True when used.
    function isTradeIdUsed(bytes32 tradeId) external view returns (bool) {
        return _usedTradeIds[tradeId];
    }

    // --------------------------------------------------------------- internal
    /// @dev The user's own checks: opt-in, per-trade maximum, buy allow-list, trade interval
    ///      (whose last trade time it records).
    function _checkUserLimits(address user, address tokenIn, address tokenOut, uint256 amountIn)
        private
        returns (UserLimits memory limits)
    {
        limits = _userLimits[user];
        if (!limits.enabled) revert ExecutorUserNotEnabled(user);
        uint256 limit = _maxAmountPerTrade[user][tokenIn];
        if (amountIn > limit) revert ExecutorAmountAboveUserLimit(user, tokenIn, amountIn, limit);
        if (tokenOut != QUOTE_TOKEN && !_buyAllowed[user][tokenOut]) revert ExecutorBuyNotAllowed(user, tokenOut);
        if (limits.minTradeInterval != 0) {
            uint256 nextTradeAt = uint256(limits.lastTradeAt) + limits.minTradeInterval;
            if (block.timestamp < nextTradeAt) revert ExecutorTradeTooSoon(user, nextTradeAt);
            _userLimits[user].lastTradeAt = uint64(block.timestamp);
        }
    }

    /// @dev An exit's checks from the protection to the caller. Fills in `order`: `user`'s whole
    ///      balance of `token`, the trigger that holds and the bounty (0 for a keeper); `due` is
    ///      false when a non-keeper's call only armed the exit.
    function _proveExit(ExitOrder memory order) private returns (OracleQuote memory prices, bool due) {
        (address user, address token) = (order.user, order.token);
        ExitProtection memory p = _liveProtection(user, token);
        uint256 amountIn = VAULT.balanceOf(user, token);
        if (amountIn == 0) revert ExecutorZeroAmount();
        prices = _quote(token, QUOTE_TOKEN, amountIn, _userLimits[user].maxOracleAge);
        ExitTrigger trigger = _exitTrigger(p, token, prices.priceIn, prices.roundIn, order.highRoundId);
        if (trigger == ExitTrigger.None) revert ExecutorExitNotTriggered(user, token, prices.priceIn);
        (order.amountIn, order.trigger) = (amountIn, trigger);
        if (_keepers[msg.sender]) return (prices, true);
        due = _armedPastGrace(user, token, p, trigger, prices.priceIn);
        order.bountyBps = p.bountyBps;
    }

    /// @dev The exit's swap: without a bounty (a keeper's, or a zero bounty) through `swap`, else
    ///      through `swapPayingBounty`, which credits the bounty in bps of the output to the caller.
    function _sellForExit(ExitOrder memory order, uint256 minAmountOut, address router, uint256 deadline)
        private
        returns (uint256 amountOut, uint256 bounty)
    {
        if (order.bountyBps == 0) {
            amountOut = VAULT.swap(order.user, order.token, QUOTE_TOKEN, order.amountIn, minAmountOut, router, deadline);
            return (amountOut, 0);
        }
        return VAULT.swapPayingBounty(
            order.user, order.token, QUOTE_TOKEN, order.amountIn, minAmountOut, router, deadline, msg.sender,
            order.bountyBps
        );
    }

    function _emitExit(ExitOrder memory order, uint256 amountOut, uint256 bounty, OracleQuote memory prices) private {
        emit ExitExecuted(
            order.user, order.token, msg.sender, order.trigger, order.amountIn, amountOut, bounty, prices.priceIn,
            prices.roundIn, order.highRoundId
        );
    }

    function _quoteToken() internal view override returns (address) {
        return QUOTE_TOKEN;
    }

    function _maxBountyBps() internal view override returns (uint256) {
        return VAULT.MAX_BOUNTY_BPS();
    }

    function _floor(uint256 oracleAmountOut, uint16 maxSlippageBps) private pure returns (uint256) {
        return Math.mulDiv(oracleAmountOut, MAX_BPS - maxSlippageBps, MAX_BPS, Math.Rounding.Ceil);
    }
}
