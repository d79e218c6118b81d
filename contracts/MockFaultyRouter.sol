// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title MockFaultyRouter
/// @notice Test double: a router that misbehaves the way a buggy or malicious one
///         could. Its fee-on-transfer swap pulls only `takeBps` of the input and pays
///         `payOut` of the output token from its own balance, whatever the pool says.
contract MockFaultyRouter {
    uint256 public takeBps = 10_000;
    uint256 public payOut;

    /// @notice Sets the share of `amountIn` pulled and the output paid per swap.
    function configure(uint256 takeBps_, uint256 payOut_) external {
        takeBps = takeBps_;
        payOut = payOut_;
    }

    /// @notice Same signature as Uniswap V2's Router02; ignores the minimum and deadline.
    function swapExactTokensForTokensSupportingFeeOnTransferTokens(
        uint256 amountIn,
        uint256,
        address[] calldata path,
        address to,
        uint256
    ) external {
        IERC20(path[0]).transferFrom(msg.sender, address(this), (amountIn * takeBps) / 10_000);
        IERC20(path[path.length - 1]).transfer(to, payOut);
    }
}
