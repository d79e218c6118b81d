// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IUniswapV2Factory} from "@uniswap/v2-core/contracts/interfaces/IUniswapV2Factory.sol";
import {IUniswapV2Pair} from "@uniswap/v2-core/contracts/interfaces/IUniswapV2Pair.sol";
import {MockToken} from "./MockToken.sol";

/// @title MockMarketDriver
/// @notice Test double for the local market replay: in one call it pushes a new answer to
///         every feed and arbitrages every token's Uniswap V2 pool against the quote token to
///         the price those answers say. Anyone may call it: it only uses what the mocks already
///         open to everyone (MockToken.mint, MockV3Aggregator.updateAnswer). Never deployed
///         outside local chains.
contract MockMarketDriver {
    error MockMarketDriverLengthMismatch(uint256 tokens, uint256 feeds);
    error MockMarketDriverNoPair(address token, address quote);
    error MockMarketDriverAnswerCount(uint256 given, uint256 expected);
    error MockMarketDriverNonPositiveAnswer(address feed, int256 answer);

    /// @notice One token's pool against the quote token; decimals read once at registration.
    struct Market {
        MockToken token;
        bool tokenIsToken0;
        uint8 tokenDecimals;
        uint8 feedDecimals;
        MockV3Aggregator feed;
        IUniswapV2Pair pair;
    }

    // Uniswap V2 credits 997/1000 of every input against its invariant (the 0.3% fee).
    uint256 private constant FEE_BASE = 1000;
    uint256 private constant INPUT_AFTER_FEE = 997;

    MockToken public immutable QUOTE;
    MockV3Aggregator public immutable QUOTE_FEED;
    uint8 public immutable QUOTE_DECIMALS;
    uint8 public immutable QUOTE_FEED_DECIMALS;

    Market[] private _markets;

    /// @param factory The Uniswap V2 factory holding a pair of each token with `quote`.
    /// @param quote The token every pool prices against.
    /// @param quoteFeed The quote token's USD feed.
    /// @param tokens The other tokens, in the order `move` takes their answers.
    /// @param feeds Each token's USD feed, in the same order.
    constructor(
        IUniswapV2Factory factory,
        MockToken quote,
        MockV3Aggregator quoteFeed,
        MockToken[] memory tokens,
        MockV3Aggregator[] memory feeds
    ) {
        if (tokens.length != feeds.length) revert MockMarketDriverLengthMismatch(tokens.length, feeds.length);
        QUOTE = quote;
        QUOTE_FEED = quoteFeed;
        QUOTE_DECIMALS = quote.decimals();
        QUOTE_FEED_DECIMALS = quoteFeed.decimals();
        for (uint256 i; i < tokens.length; ++i) {
            address pair = factory.getPair(address(tokens[i]), address(quote));
            if (pair == address(0)) revert MockMarketDriverNoPair(address(tokens[i]), address(quote));
            _markets.push(
                Market({
                    token: tokens[i],
                    tokenIsToken0: IUniswapV2Pair(pair).token0() == address(tokens[i]),
                    tokenDecimals: tokens[i].decimals(),
                    feedDecimals: feeds[i].decimals(),
                    feed: feeds[i],
                    pair: IUniswapV2Pair(pair)
                })
            );
        }
    }

    /// @notice Pushes one round to every feed, then trades every pool to the new oracle price.
    /// @param answers The quote feed's answer first, then each token's in registration order
    ///        (USD, in each feed's decimals).
    /// @dev The quote feed is pushed first: every pool's target price uses its new answer.
    function move(int256[] calldata answers) external {
        uint256 count = _markets.length;
        if (answers.length != count + 1) revert MockMarketDriverAnswerCount(answers.length, count + 1);
        uint256 quoteAnswer = _push(QUOTE_FEED, answers[0]);
        uint256 quoteScale = 10 ** (uint256(QUOTE_DECIMALS) + QUOTE_FEED_DECIMALS);
        for (uint256 i; i < count; ++i) {
            Market memory market = _markets[i];
            uint256 tokenAnswer = _push(market.feed, answers[i + 1]);
            // One token base unit costs priceNum / priceDen quote base units.
            uint256 priceNum = tokenAnswer * quoteScale;
            uint256 priceDen = quoteAnswer * 10 ** (uint256(market.tokenDecimals) + market.feedDecimals);
            (uint256 reserve0, uint256 reserve1, ) = market.pair.getReserves();
            (uint256 tokenReserve, uint256 quoteReserve) =
                market.tokenIsToken0 ? (reserve0, reserve1) : (reserve1, reserve0);
            if (quoteReserve * priceDen < tokenReserve * priceNum) {
                // The pool sells the token too cheaply: buy it with quote.
                _tradeToPrice(market.pair, QUOTE, quoteReserve, tokenReserve, priceNum, priceDen, market.tokenIsToken0);
            } else {
                _tradeToPrice(market.pair, market.token, tokenReserve, quoteReserve, priceDen, priceNum, !market.tokenIsToken0);
            }
        }
    }

    /// @notice Every registered market, in the order `move` takes their answers.
    function markets() external view returns (Market[] memory) {
        return _markets;
    }

    function _push(MockV3Aggregator feed, int256 answer) private returns (uint256) {
        if (answer <= 0) revert MockMarketDriverNonPositiveAnswer(address(feed), answer);
        feed.updateAnswer(answer);
        return uint256(answer);
    }

    /// @dev Mints `tokenIn` to the pair and takes out the other token so that, after the fee,
    ///      reserveIn' / reserveOut' = priceNum / priceDen. The pair accepts a swap when
    ///      (997 * reserveIn' + 3 * reserveIn) * reserveOut' >= 1000 * reserveIn * reserveOut;
    ///      with reserveIn' = price * reserveOut' that is a quadratic in reserveOut':
    ///      997 z^2 + 3 s z - 1000 t = 0, s = reserveIn / price, t = reserveIn * reserveOut / price.
    ///      Ignoring the fee instead would leave the price off by up to 0.3% of the move.
    function _tradeToPrice(
        IUniswapV2Pair pair,
        MockToken tokenIn,
        uint256 reserveIn,
        uint256 reserveOut,
        uint256 priceNum,
        uint256 priceDen,
        bool outIsToken0
    ) private {
        uint256 s = Math.mulDiv(reserveIn, priceDen, priceNum);
        uint256 t = Math.mulDiv(reserveIn * reserveOut, priceDen, priceNum);
        uint256 fee = FEE_BASE - INPUT_AFTER_FEE;
        uint256 finalOut = (Math.sqrt(fee * fee * s * s + 4 * INPUT_AFTER_FEE * FEE_BASE * t) - fee * s) /
            (2 * INPUT_AFTER_FEE);
        if (finalOut >= reserveOut) return; // already at the price, to rounding
        uint256 amountOut = reserveOut - finalOut;
        // Uniswap's getAmountIn: the least input the pair accepts for amountOut.
        uint256 amountIn = (reserveIn * amountOut * FEE_BASE) / (finalOut * INPUT_AFTER_FEE) + 1;
        tokenIn.mint(address(pair), amountIn);
        // The output stays with the driver: nobody needs it.
        pair.swap(outIsToken0 ? amountOut : 0, outIsToken0 ? 0 : amountOut, address(this), "");
    }
}
