// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {GuardianPausable} from "./GuardianPausable.sol";
import {Vault} from "./Vault.sol";

/// @title Executor
/// @notice Lets allow-listed keepers swap a user's vault balance through an
///         allow-listed Uniswap-V2-compatible router, only within the user's own
///         limits and only at a price that both tokens' Chainlink feeds confirm.
/// @dev A keeper chooses `minAmountOut`, but it must be at least the oracle value of
///      `amountIn` less the user's own slippage limit, so a compromised keeper can cost
///      a user at most that slippage per trade, within the user's per-trade maximum.
contract Executor is GuardianPausable, ReentrancyGuardTransient {
    /// @notice A token's price feed and what counts as a valid answer.
    struct FeedConfig {
        AggregatorV3Interface feed;
        uint32 maxAge; // seconds an answer stays valid
        uint8 feedDecimals; // read once at registration
        uint8 tokenDecimals; // read once at registration
        int256 minAnswer; // answers at or below are rejected (0: no bound)
        int256 maxAnswer; // answers at or above are rejected (0: no bound)
    }

    /// @notice A user's own trading limits (one storage slot).
    struct UserLimits {
        bool enabled;
        uint16 maxSlippageBps;
        uint32 minTradeInterval; // seconds between two trades; 0: no limit
        uint64 lastTradeAt; // kept only while minTradeInterval is set
    }

    /// @notice Both validated feed readings and the floor derived from them.
    struct OracleQuote {
        uint256 priceIn; // USD per whole tokenIn, 18 decimals
        uint256 priceOut; // USD per whole tokenOut, 18 decimals
        uint80 roundIn;
        uint80 roundOut;
        uint256 oracleAmountOut; // amountIn valued in tokenOut at the oracle prices
    }

    // ---------------------------------------------------------------- errors
    /// @notice `caller` is not an allow-listed keeper.
    error ExecutorUnauthorizedKeeper(address caller);
    /// @notice `router` is not on the router allow-list.
    error ExecutorRouterNotAllowed(address router);
    /// @notice An address argument was the zero address.
    error ExecutorZeroAddress();
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
    /// @notice No price feed is registered for `token`.
    error ExecutorFeedNotSet(address token);
    /// @notice Reading `feed` reverted.
    error ExecutorFeedReverted(address feed);
    /// @notice `feed` answered a non-positive `answer`.
    error ExecutorInvalidPrice(address feed, int256 answer);
    /// @notice `feed`'s latest round is not complete (round id or updatedAt is zero).
    error ExecutorIncompleteRound(address feed, uint80 roundId);
    /// @notice `feed`'s `updatedAt` is after the block's `timestamp`.
    error ExecutorFuturePrice(address feed, uint256 updatedAt, uint256 timestamp);
    /// @notice `feed`'s answer from `updatedAt` is older than `maxAge` seconds.
    error ExecutorStalePrice(address feed, uint256 updatedAt, uint256 maxAge);
    /// @notice `feed`'s `answer` is at or beyond its configured bounds (a pinned feed).
    error ExecutorPriceOutOfBounds(address feed, int256 answer, int256 minAnswer, int256 maxAnswer);
    /// @notice A registration for `token` (or of the sequencer feed) is invalid; `reason` names the field.
    error ExecutorInvalidFeedConfig(address token, string reason);
    /// @notice The L2 sequencer is down (or its uptime round is invalid).
    error ExecutorSequencerDown(address sequencerFeed);
    /// @notice The sequencer restarted at `restartedAt`, within `gracePeriod` seconds.
    error ExecutorSequencerGracePeriod(uint256 restartedAt, uint256 gracePeriod);

    // ---------------------------------------------------------------- events
    /// @notice `keeper` was added to (`allowed`) or removed from the keeper allow-list.
    event KeeperUpdated(address indexed keeper, bool allowed);
    /// @notice `router` was added to (`allowed`) or removed from the router allow-list.
    event RouterUpdated(address indexed router, bool allowed);
    /// @notice `token`'s price feed was registered or changed.
    event FeedUpdated(
        address indexed token, address indexed feed, uint32 maxAge, int256 minAnswer, int256 maxAnswer
    );
    /// @notice `token`'s price feed was removed; its trades stop.
    event FeedRemoved(address indexed token);
    /// @notice The L2 sequencer uptime feed or its grace period changed.
    event SequencerFeedUpdated(address indexed sequencerFeed, uint32 gracePeriod);
    /// @notice `user` opted in or out, or changed their slippage limit.
    event UserLimitsUpdated(address indexed user, bool enabled, uint16 maxSlippageBps);
    /// @notice `user` changed their per-trade maximum for `token`.
    event MaxAmountPerTradeUpdated(address indexed user, address indexed token, uint256 maxAmount);
    /// @notice `user` changed the least time between two of their trades.
    event MinTradeIntervalUpdated(address indexed user, uint32 minTradeInterval);
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
    uint256 public constant MAX_BPS = 10_000;
    /// @notice Most slippage a user may allow: a bound against fat fingers.
    uint16 public constant MAX_USER_SLIPPAGE_BPS = 1_000;
    /// @notice Longest staleness limit a feed may be given.
    uint32 public constant MAX_FEED_AGE = 7 days;
    /// @notice Longest wait after an L2 sequencer restart that may be configured.
    uint32 public constant MAX_SEQUENCER_GRACE_PERIOD = 1 days;
    uint8 private constant PRICE_DECIMALS = 18;
    /// @notice The vault whose balances this executor swaps.
    // slither-disable-next-line naming-convention
    Vault public immutable VAULT;

    // --------------------------------------------------------------- storage
    mapping(address token => FeedConfig) private _feeds;
    mapping(address user => UserLimits) private _userLimits;
    mapping(address user => mapping(address token => uint256)) private _maxAmountPerTrade;
    mapping(address keeper => bool) private _keepers;
    mapping(address router => bool) private _routers;
    mapping(bytes32 tradeId => bool) private _usedTradeIds;
    AggregatorV3Interface private _sequencerFeed;
    uint32 private _sequencerGracePeriod;

    // ----------------------------------------------------------- constructor
    /// @param initialOwner Account that manages keepers, routers, feeds and the guardian.
    /// @param vault The vault whose balances this executor swaps.
    constructor(address initialOwner, Vault vault) GuardianPausable(initialOwner) {
        if (address(vault) == address(0)) revert ExecutorZeroAddress();
        VAULT = vault;
    }

    // ---------------------------------------------------- keeper: the trade
    /// @notice Swaps `amountIn` of `user`'s vault balance of `tokenIn` for `tokenOut`.
    /// @dev Checks, in order: pause, keeper, deadline, router, tradeId, user opt-in,
    ///      per-trade limit and trade interval, sequencer, both feeds, oracle floor. Then marks `tradeId`
    ///      used and lets the vault swap (it credits the measured output to `user`).
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
        UserLimits memory limits = _userLimits[user];
        if (!limits.enabled) revert ExecutorUserNotEnabled(user);
        uint256 limit = _maxAmountPerTrade[user][tokenIn];
        if (amountIn > limit) revert ExecutorAmountAboveUserLimit(user, tokenIn, amountIn, limit);
        if (limits.minTradeInterval != 0) {
            uint256 nextTradeAt = uint256(limits.lastTradeAt) + limits.minTradeInterval;
            if (block.timestamp < nextTradeAt) revert ExecutorTradeTooSoon(user, nextTradeAt);
            _userLimits[user].lastTradeAt = uint64(block.timestamp);
        }

        OracleQuote memory prices = _quote(tokenIn, tokenOut, amountIn);
        uint256 floor = _floor(prices.oracleAmountOut, limits.maxSlippageBps);
        if (minAmountOut < floor) revert ExecutorMinOutBelowOracleFloor(minAmountOut, floor);

        _usedTradeIds[tradeId] = true;
        amountOut = VAULT.swap(user, tokenIn, tokenOut, amountIn, minAmountOut, router, deadline);
        emit TradeExecuted(
            tradeId,
            user,
            msg.sender,
            tokenIn,
            tokenOut,
            amountIn,
            amountOut,
            prices.priceIn,
            prices.priceOut,
            prices.roundIn,
            prices.roundOut
        );
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

    // ------------------------------------------------------------ owner: admin
    /// @notice Adds `keeper` to or removes it from the keeper allow-list.
    /// @param keeper The keeper account.
    /// @param allowed True to let it call `executeTrade`.
    function setKeeper(address keeper, bool allowed) external onlyOwner {
        if (keeper == address(0)) revert ExecutorZeroAddress();
        _keepers[keeper] = allowed;
        emit KeeperUpdated(keeper, allowed);
    }

    /// @notice Adds `router` to or removes it from the router allow-list.
    /// @param router A Uniswap-V2-compatible router.
    /// @param allowed True to allow trades through it.
    function setRouter(address router, bool allowed) external onlyOwner {
        if (router == address(0)) revert ExecutorZeroAddress();
        _routers[router] = allowed;
        emit RouterUpdated(router, allowed);
    }

    /// @notice Registers `token`'s Chainlink feed and what counts as a valid answer.
    /// @dev Reads and caches both decimals; the feed must answer validly right now.
    /// @param token The ERC-20 token the feed prices in USD.
    /// @param feed Its AggregatorV3Interface (a proxy on public networks).
    /// @param maxAge Seconds an answer stays valid (the feed's heartbeat plus margin).
    /// @param minAnswer Answers at or below are rejected; 0 for no lower bound.
    /// @param maxAnswer Answers at or above are rejected; 0 for no upper bound.
    function setFeed(address token, AggregatorV3Interface feed, uint32 maxAge, int256 minAnswer, int256 maxAnswer)
        external
        onlyOwner
    {
        if (token == address(0) || address(feed) == address(0)) revert ExecutorZeroAddress();
        if (maxAge == 0 || maxAge > MAX_FEED_AGE) revert ExecutorInvalidFeedConfig(token, "maxAge");
        if (minAnswer < 0 || (maxAnswer != 0 && maxAnswer <= minAnswer)) {
            revert ExecutorInvalidFeedConfig(token, "bounds");
        }
        uint8 feedDecimals = feed.decimals();
        uint8 tokenDecimals = IERC20Metadata(token).decimals();
        if (feedDecimals > PRICE_DECIMALS) revert ExecutorInvalidFeedConfig(token, "feed decimals");
        if (tokenDecimals > 36) revert ExecutorInvalidFeedConfig(token, "token decimals");

        FeedConfig memory config = FeedConfig(feed, maxAge, feedDecimals, tokenDecimals, minAnswer, maxAnswer);
        _readPrice(config);
        _feeds[token] = config;
        emit FeedUpdated(token, address(feed), maxAge, minAnswer, maxAnswer);
    }

    /// @notice Removes `token`'s feed; trades of `token` stop.
    /// @param token The token.
    function removeFeed(address token) external onlyOwner {
        if (address(_feeds[token].feed) == address(0)) revert ExecutorFeedNotSet(token);
        delete _feeds[token];
        emit FeedRemoved(token);
    }

    /// @notice Sets the L2 sequencer uptime feed; zero address for an L1 (no check).
    /// @dev Reverts ExecutorInvalidFeedConfig(feed, "gracePeriod") above MAX_SEQUENCER_GRACE_PERIOD.
    /// @param sequencerFeed Chainlink's sequencer uptime feed (answer 0 up, 1 down).
    /// @param gracePeriod Seconds after the sequencer comes back before trading resumes.
    function setSequencerFeed(AggregatorV3Interface sequencerFeed, uint32 gracePeriod) external onlyOwner {
        if (gracePeriod > MAX_SEQUENCER_GRACE_PERIOD) {
            revert ExecutorInvalidFeedConfig(address(sequencerFeed), "gracePeriod");
        }
        _sequencerFeed = sequencerFeed;
        _sequencerGracePeriod = gracePeriod;
        emit SequencerFeedUpdated(address(sequencerFeed), gracePeriod);
    }

    // ------------------------------------------------------------------ views
    /// @notice The oracle value of `amountIn` of `tokenIn` in `tokenOut`, validated.
    /// @dev Reverts with the named error of any failed check, never a stale answer.
    /// @param tokenIn Token sold.
    /// @param tokenOut Token bought.
    /// @param amountIn Amount of `tokenIn`.
    /// @return quote Both prices (18 decimals), their round ids and the oracle amount out.
    function quote(address tokenIn, address tokenOut, uint256 amountIn)
        external
        view
        returns (OracleQuote memory)
    {
        return _quote(tokenIn, tokenOut, amountIn);
    }

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
        return _floor(_quote(tokenIn, tokenOut, amountIn).oracleAmountOut, _userLimits[user].maxSlippageBps);
    }

    /// @notice `token`'s feed configuration (zero feed when none).
    /// @param token The token.
    /// @return The stored configuration.
    function feedConfig(address token) external view returns (FeedConfig memory) {
        return _feeds[token];
    }

    /// @notice `user`'s opt-in, slippage limit, trade interval and last trade time.
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

    /// @notice The L2 sequencer uptime feed and its grace period (zero feed on L1).
    /// @return sequencerFeed The feed.
    /// @return gracePeriod Seconds after a restart before trading resumes.
    function sequencer() external view returns (AggregatorV3Interface sequencerFeed, uint32 gracePeriod) {
        return (_sequencerFeed, _sequencerGracePeriod);
    }

    // --------------------------------------------------------------- internal
    function _quote(address tokenIn, address tokenOut, uint256 amountIn)
        private
        view
        returns (OracleQuote memory result)
    {
        _checkSequencer();
        FeedConfig memory configIn = _feedOf(tokenIn);
        FeedConfig memory configOut = _feedOf(tokenOut);
        (result.priceIn, result.roundIn) = _readPrice(configIn);
        (result.priceOut, result.roundOut) = _readPrice(configOut);
        // value in USD (18 decimals), then in tokenOut units; mulDiv keeps full precision.
        uint256 valueUsd = Math.mulDiv(amountIn, result.priceIn, 10 ** configIn.tokenDecimals);
        result.oracleAmountOut = Math.mulDiv(valueUsd, 10 ** configOut.tokenDecimals, result.priceOut);
    }

    function _floor(uint256 oracleAmountOut, uint16 maxSlippageBps) private pure returns (uint256) {
        return Math.mulDiv(oracleAmountOut, MAX_BPS - maxSlippageBps, MAX_BPS, Math.Rounding.Ceil);
    }

    function _feedOf(address token) private view returns (FeedConfig memory config) {
        config = _feeds[token];
        if (address(config.feed) == address(0)) revert ExecutorFeedNotSet(token);
    }

    /// @dev Validates one answer and scales it to 18 decimals. A failed check reverts
    ///      with its named error: there is no fallback to a last good price. A feed
    ///      that reverts (or runs out of gas) only reverts this trade, so no gas guard
    ///      is needed in the catch.
    function _readPrice(FeedConfig memory config) private view returns (uint256 price, uint80 roundId) {
        // startedAt and answeredInRound are not needed: completeness is updatedAt != 0.
        // slither-disable-next-line unused-return
        try config.feed.latestRoundData() returns (uint80 round, int256 answer, uint256, uint256 updatedAt, uint80) {
            return (_validPrice(config, round, answer, updatedAt), round);
        } catch {
            revert ExecutorFeedReverted(address(config.feed));
        }
    }

    function _validPrice(FeedConfig memory config, uint80 roundId, int256 answer, uint256 updatedAt)
        private
        view
        returns (uint256)
    {
        address feed = address(config.feed);
        if (roundId == 0 || updatedAt == 0) revert ExecutorIncompleteRound(feed, roundId);
        if (answer <= 0) revert ExecutorInvalidPrice(feed, answer);
        if (updatedAt > block.timestamp) revert ExecutorFuturePrice(feed, updatedAt, block.timestamp);
        if (block.timestamp - updatedAt > config.maxAge) revert ExecutorStalePrice(feed, updatedAt, config.maxAge);
        // Chainlink aggregators clamp answers to their min/max: an answer at a bound is
        // not a price, it is a pinned feed.
        if (answer <= config.minAnswer || (config.maxAnswer != 0 && answer >= config.maxAnswer)) {
            revert ExecutorPriceOutOfBounds(feed, answer, config.minAnswer, config.maxAnswer);
        }
        return uint256(answer) * 10 ** (PRICE_DECIMALS - config.feedDecimals);
    }

    function _checkSequencer() private view {
        AggregatorV3Interface sequencerFeed = _sequencerFeed;
        if (address(sequencerFeed) == address(0)) return;
        // Only the answer (0 up, 1 down) and the time it took that state are needed.
        // slither-disable-next-line unused-return
        try sequencerFeed.latestRoundData() returns (uint80, int256 answer, uint256 startedAt, uint256, uint80) {
            // startedAt 0 marks an invalid round (Chainlink's L2 sequencer docs).
            if (answer != 0 || startedAt == 0) revert ExecutorSequencerDown(address(sequencerFeed));
            if (startedAt > block.timestamp || block.timestamp - startedAt <= _sequencerGracePeriod) {
                revert ExecutorSequencerGracePeriod(startedAt, _sequencerGracePeriod);
            }
        } catch {
            revert ExecutorFeedReverted(address(sequencerFeed));
        }
    }
}
