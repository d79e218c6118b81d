// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SentinelManaged} from "./SentinelManaged.sol";

/// @title ExecutorOracle
/// @notice The Executor's price side: one Chainlink feed per token, an optional L2
///         sequencer feed, and the validated oracle value of a trade.
/// @dev Every feed answer is read with a bounded `staticcall`: at most the expected bytes
///      are copied, and anything but a well-formed answer reverts with a named error.
abstract contract ExecutorOracle is SentinelManaged {
    /// @notice A token's price feed and what counts as a valid answer.
    struct FeedConfig {
        AggregatorV3Interface feed;
        uint32 maxAge; // seconds an answer stays valid
        uint8 feedDecimals; // read at registration, checked on every read
        uint8 tokenDecimals; // read at registration
        int256 minAnswer; // answers at or below are rejected (0: no bound)
        int256 maxAnswer; // answers at or above are rejected (0: no bound)
    }

    /// @notice Both validated feed readings and the values derived from them.
    struct OracleQuote {
        uint256 priceIn; // USD per whole tokenIn, 18 decimals
        uint256 priceOut; // USD per whole tokenOut, 18 decimals
        uint80 roundIn;
        uint80 roundOut;
        uint256 oracleAmountOut; // amountIn valued in tokenOut at the oracle prices, rounded up
        uint256 valueUsd; // amountIn valued in USD, 18 decimals, rounded up
    }

    // ---------------------------------------------------------------- errors
    /// @notice An address argument was the zero address.
    error ExecutorZeroAddress();
    /// @notice No price feed is registered for `token`.
    error ExecutorFeedNotSet(address token);
    /// @notice Reading `feed` reverted.
    error ExecutorFeedReverted(address feed);
    /// @notice `feed` answered `size` bytes, or values out of their types' range.
    error ExecutorFeedMalformed(address feed, uint256 size);
    /// @notice `feed` now reports `current` decimals, not the `registered` ones: register it again.
    error ExecutorFeedDecimalsChanged(address feed, uint8 registered, uint8 current);
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
    /// @notice `roundId` is not a round of `feed`'s current phase at or before its latest round `latestRoundId`.
    error ExecutorRoundOutOfRange(address feed, uint80 roundId, uint80 latestRoundId);

    // ---------------------------------------------------------------- events
    /// @notice `token`'s price feed was registered or changed.
    event FeedUpdated(
        address indexed token, address indexed feed, uint32 maxAge, int256 minAnswer, int256 maxAnswer
    );
    /// @notice `token`'s price feed was removed; its trades stop.
    event FeedRemoved(address indexed token);
    /// @notice The L2 sequencer uptime feed or its grace period changed.
    event SequencerFeedUpdated(address indexed sequencerFeed, uint32 gracePeriod);

    // ------------------------------------------------- constants & immutables
    /// @notice Longest staleness limit a feed may be given.
    uint32 public constant MAX_FEED_AGE = 7 days;
    /// @notice Longest wait after an L2 sequencer restart that may be configured.
    uint32 public constant MAX_SEQUENCER_GRACE_PERIOD = 1 days;
    uint8 private constant PRICE_DECIMALS = 18;
    uint256 private constant ROUND_DATA_SIZE = 160; // latestRoundData: five 32-byte words

    // --------------------------------------------------------------- storage
    mapping(address token => FeedConfig) private _feeds;
    AggregatorV3Interface private _sequencerFeed;
    uint32 private _sequencerGracePeriod;

    // -------------------------------------------------------- external writes
    /// @notice Registers `token`'s Chainlink feed and what counts as a valid answer.
    /// @dev Caches both decimals; the feed must answer validly right now.
    /// @param token The ERC-20 token the feed prices in USD.
    /// @param feed Its AggregatorV3Interface (a proxy on public networks).
    /// @param maxAge Seconds an answer stays valid (the feed's heartbeat plus margin).
    /// @param minAnswer Answers at or below are rejected; 0 for no lower bound.
    /// @param maxAnswer Answers at or above are rejected; 0 for no upper bound.
    function setFeed(address token, AggregatorV3Interface feed, uint32 maxAge, int256 minAnswer, int256 maxAnswer)
        external
        restricted
    {
        if (token == address(0) || address(feed) == address(0)) revert ExecutorZeroAddress();
        if (maxAge == 0 || maxAge > MAX_FEED_AGE) revert ExecutorInvalidFeedConfig(token, "maxAge");
        if (minAnswer < 0 || (maxAnswer != 0 && maxAnswer <= minAnswer)) {
            revert ExecutorInvalidFeedConfig(token, "bounds");
        }
        uint8 feedDecimals = _decimalsOf(address(feed));
        uint8 tokenDecimals = IERC20Metadata(token).decimals();
        if (feedDecimals > PRICE_DECIMALS) revert ExecutorInvalidFeedConfig(token, "feed decimals");
        if (tokenDecimals > 36) revert ExecutorInvalidFeedConfig(token, "token decimals");

        FeedConfig memory config = FeedConfig(feed, maxAge, feedDecimals, tokenDecimals, minAnswer, maxAnswer);
        _readPrice(config, maxAge);
        _feeds[token] = config;
        emit FeedUpdated(token, address(feed), maxAge, minAnswer, maxAnswer);
    }

    /// @notice Removes `token`'s feed; trades of `token` stop at once.
    /// @param token The token.
    function removeFeed(address token) external restricted {
        if (address(_feeds[token].feed) == address(0)) revert ExecutorFeedNotSet(token);
        delete _feeds[token];
        emit FeedRemoved(token);
    }

    /// @notice Sets the L2 sequencer uptime feed; zero address for an L1 (no check).
    /// @dev Reverts ExecutorInvalidFeedConfig(feed, "gracePeriod") above MAX_SEQUENCER_GRACE_PERIOD.
    /// @param sequencerFeed Chainlink's sequencer uptime feed (answer 0 up, 1 down).
    /// @param gracePeriod Seconds after the sequencer comes back before trading resumes.
    function setSequencerFeed(AggregatorV3Interface sequencerFeed, uint32 gracePeriod) external restricted {
        if (gracePeriod > MAX_SEQUENCER_GRACE_PERIOD) {
            revert ExecutorInvalidFeedConfig(address(sequencerFeed), "gracePeriod");
        }
        _sequencerFeed = sequencerFeed;
        _sequencerGracePeriod = gracePeriod;
        emit SequencerFeedUpdated(address(sequencerFeed), gracePeriod);
    }

    // ------------------------------------------------------------------ views
    /// @notice The oracle value of `amountIn` of `tokenIn` in `tokenOut`, validated.
    /// @dev Reverts with the named error of any failed check, never a stale answer. Both
    ///      values are rounded up (in the user's favour: the expected output and the loss
    ///      counted against it are never understated). Feeds' own maximum ages apply; a
    ///      user's tighter one applies to their trades (`Executor.oracleFloor`).
    /// @param tokenIn Token sold.
    /// @param tokenOut Token bought.
    /// @param amountIn Amount of `tokenIn`.
    /// @return quote Both prices (18 decimals), their round ids, the oracle amount out and USD value.
    function quote(address tokenIn, address tokenOut, uint256 amountIn) external view returns (OracleQuote memory) {
        return _quote(tokenIn, tokenOut, amountIn, 0);
    }

    /// @notice `token`'s feed configuration (zero feed when none).
    /// @param token The token.
    /// @return The stored configuration.
    function feedConfig(address token) external view returns (FeedConfig memory) {
        return _feeds[token];
    }

    /// @notice The L2 sequencer uptime feed and its grace period (zero feed on L1).
    /// @return sequencerFeed The feed.
    /// @return gracePeriod Seconds after a restart before trading resumes.
    function sequencer() external view returns (AggregatorV3Interface sequencerFeed, uint32 gracePeriod) {
        return (_sequencerFeed, _sequencerGracePeriod);
    }

    // --------------------------------------------------------------- internal
    /// @dev `maxAge`: a tighter staleness bound than the feeds' own (0: the feeds' own).
    function _quote(address tokenIn, address tokenOut, uint256 amountIn, uint32 maxAge)
        internal
        view
        returns (OracleQuote memory result)
    {
        _checkSequencer();
        FeedConfig memory configIn = _feedOf(tokenIn);
        FeedConfig memory configOut = _feedOf(tokenOut);
        (result.priceIn, result.roundIn) = _readPrice(configIn, _tighter(configIn.maxAge, maxAge));
        (result.priceOut, result.roundOut) = _readPrice(configOut, _tighter(configOut.maxAge, maxAge));
        // value in USD (18 decimals), then in tokenOut units; mulDiv keeps full precision and
        // rounds up, so a dust trade's expected output is never rounded away.
        result.valueUsd = Math.mulDiv(amountIn, result.priceIn, 10 ** configIn.tokenDecimals, Math.Rounding.Ceil);
        result.oracleAmountOut =
            Math.mulDiv(result.valueUsd, 10 ** configOut.tokenDecimals, result.priceOut, Math.Rounding.Ceil);
    }

    function _tighter(uint32 feedMaxAge, uint32 maxAge) private pure returns (uint32) {
        return maxAge != 0 && maxAge < feedMaxAge ? maxAge : feedMaxAge;
    }

    function _feedOf(address token) private view returns (FeedConfig memory config) {
        config = _feeds[token];
        if (address(config.feed) == address(0)) revert ExecutorFeedNotSet(token);
    }

    /// @dev Validates one answer and scales it to 18 decimals. A failed check reverts
    ///      with its named error: there is no fallback to a last good price. The feed's
    ///      decimals are read again: a proxy re-pointed to another aggregator must be
    ///      registered again (through the delayed path), not trusted silently.
    function _readPrice(FeedConfig memory config, uint32 maxAge) private view returns (uint256 price, uint80 roundId) {
        address feed = address(config.feed);
        bytes32[] memory data = _call(feed, abi.encodeCall(AggregatorV3Interface.latestRoundData, ()), ROUND_DATA_SIZE);
        // words: roundId, answer, startedAt, updatedAt, answeredInRound (the last two unused but for range)
        if (uint256(data[0]) > type(uint80).max) revert ExecutorFeedMalformed(feed, ROUND_DATA_SIZE);
        uint8 decimals = _decimalsOf(feed);
        if (decimals != config.feedDecimals) revert ExecutorFeedDecimalsChanged(feed, config.feedDecimals, decimals);
        roundId = uint80(uint256(data[0]));
        uint256 updatedAt;
        (price, updatedAt) = _checkedAnswer(config, roundId, data);
        if (block.timestamp - updatedAt > maxAge) revert ExecutorStalePrice(feed, updatedAt, maxAge);
    }

    /// @dev The answer of `token`'s feed in round `roundId` (a proxy round id), scaled to 18 decimals,
    ///      and its `updatedAt`: every check of a latest answer but its age (an old round is old by
    ///      nature; the caller bounds it by time). Only rounds of the latest round's phase, up to the
    ///      latest round itself, count: a proxy's earlier phase is another aggregator. Call it only
    ///      after `_quote` read the same feed in the same call: that read checked its decimals.
    function _roundPrice(address token, uint80 roundId, uint80 latestRoundId)
        internal
        view
        returns (uint256 price, uint256 updatedAt)
    {
        FeedConfig memory config = _feeds[token];
        address feed = address(config.feed);
        if (roundId > latestRoundId || roundId >> 64 != latestRoundId >> 64) {
            revert ExecutorRoundOutOfRange(feed, roundId, latestRoundId);
        }
        bytes32[] memory data =
            _call(feed, abi.encodeCall(AggregatorV3Interface.getRoundData, (roundId)), ROUND_DATA_SIZE);
        // A feed that answers for another round than the one asked for has not answered it.
        if (uint256(data[0]) != roundId) revert ExecutorIncompleteRound(feed, roundId);
        return _checkedAnswer(config, roundId, data);
    }

    /// @dev The checks every answer passes, latest or not; the price scaled to 18 decimals.
    function _checkedAnswer(FeedConfig memory config, uint80 roundId, bytes32[] memory data)
        private
        view
        returns (uint256 price, uint256 updatedAt)
    {
        address feed = address(config.feed);
        int256 answer = int256(uint256(data[1]));
        updatedAt = uint256(data[3]);
        if (roundId == 0 || updatedAt == 0) revert ExecutorIncompleteRound(feed, roundId);
        if (answer <= 0) revert ExecutorInvalidPrice(feed, answer);
        if (updatedAt > block.timestamp) revert ExecutorFuturePrice(feed, updatedAt, block.timestamp);
        // Chainlink aggregators clamp answers to their min/max: an answer at a bound is
        // not a price, it is a pinned feed.
        if (answer <= config.minAnswer || (config.maxAnswer != 0 && answer >= config.maxAnswer)) {
            revert ExecutorPriceOutOfBounds(feed, answer, config.minAnswer, config.maxAnswer);
        }
        price = uint256(answer) * 10 ** (PRICE_DECIMALS - config.feedDecimals);
    }

    function _checkSequencer() private view {
        address sequencerFeed = address(_sequencerFeed);
        if (sequencerFeed == address(0)) return;
        bytes32[] memory data =
            _call(sequencerFeed, abi.encodeCall(AggregatorV3Interface.latestRoundData, ()), ROUND_DATA_SIZE);
        // Only the answer (0 up, 1 down) and the time it took that state (startedAt) count;
        // startedAt 0 marks an invalid round (Chainlink's L2 sequencer docs).
        uint256 startedAt = uint256(data[2]);
        if (data[1] != 0 || startedAt == 0) revert ExecutorSequencerDown(sequencerFeed);
        if (startedAt > block.timestamp || block.timestamp - startedAt <= _sequencerGracePeriod) {
            revert ExecutorSequencerGracePeriod(startedAt, _sequencerGracePeriod);
        }
    }

    /// @dev Calls a view of `feed` with `callData` and returns exactly `size` bytes as words.
    ///      Copies at most `size` bytes whatever the feed returns; a revert, or an answer
    ///      of any other length, reverts with a named error.
    function _call(address feed, bytes memory callData, uint256 size) private view returns (bytes32[] memory words) {
        words = new bytes32[](size / 32);
        bool success;
        uint256 returned;
        // Assembly: Solidity's own call copies the whole return data, whatever its size.
        // slither-disable-next-line assembly
        assembly ("memory-safe") {
            success := staticcall(gas(), feed, add(callData, 32), mload(callData), add(words, 32), size)
            returned := returndatasize()
        }
        if (!success) revert ExecutorFeedReverted(feed);
        if (returned != size) revert ExecutorFeedMalformed(feed, returned);
    }

    function _decimalsOf(address feed) private view returns (uint8) {
        uint256 decimals = uint256(_call(feed, abi.encodeCall(AggregatorV3Interface.decimals, ()), 32)[0]);
        if (decimals > type(uint8).max) revert ExecutorFeedMalformed(feed, 32);
        return uint8(decimals);
    }
}
