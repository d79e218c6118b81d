// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IUniswapV2Router02} from "@uniswap/v2-periphery/contracts/interfaces/IUniswapV2Router02.sol";
import {SentinelManaged} from "./SentinelManaged.sol";

/// @title Vault
/// @notice Holds allow-listed ERC-20 tokens for many users as per-user balances.
///         Users deposit and withdraw their own balance; only the Executor may move a
///         balance, and only as one side of a swap whose output returns to the same user.
///         The one exception: a protective exit executed by someone other than a keeper pays
///         that caller a bounty of at most MAX_BOUNTY_BPS of the swap's output, credited
///         within the vault (`swapPayingBounty`, event BountyPaid).
/// @dev Invariant, per token: sum of user balances == accountedTotal <= balanceOf(vault).
///      Whatever arrives outside deposit and swap (a donation) credits no one; `sweep`
///      takes only tokens never listed. Pause stops deposits and swaps, never withdrawals.
///      A token whose balance fell below the accounted total (it rebased down) is in
///      shortfall: withdrawals pay each unit owed held/accounted (pro rata, never first
///      come), and deposits and swaps of it stop until the vault covers it again.
///      Admin functions are `restricted`: the AccessManager decides who may call them
///      and after which delay. ReentrancyGuardTransient needs EIP-1153 (Cancun).
contract Vault is SentinelManaged, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.AddressSet;

    // ---------------------------------------------------------------- errors
    /// @notice `token` is not on the vault's allow-list.
    error VaultTokenNotAllowed(address token);
    /// @notice An amount of zero was given, or zero tokens arrived.
    error VaultZeroAmount();
    /// @notice An address argument was the zero address.
    error VaultZeroAddress();
    /// @notice `user` holds `have` of `token` but `need` was asked for.
    error VaultInsufficientBalance(address user, address token, uint256 have, uint256 need);
    /// @notice Only the executor may call this; `caller` is not it.
    error VaultUnauthorizedExecutor(address caller);
    /// @notice A swap must exchange two different tokens.
    error VaultSameToken(address token);
    /// @notice The swap delivered `received`, less than the `minimum` asked for.
    error VaultInsufficientOutput(uint256 received, uint256 minimum);
    /// @notice `sweep` asked for `amount` of `token` but only `surplus` is unowned.
    error VaultSweepExceedsSurplus(address token, uint256 surplus, uint256 amount);
    /// @notice `token` is or was listed: users may hold it, so it is never swept.
    error VaultSweepListedToken(address token);
    /// @notice After a sweep the vault holds `held` of listed `token`, less than the `accounted` total.
    error VaultSweepUncoversListedToken(address token, uint256 held, uint256 accounted);
    /// @notice Withdrawing `amount` of `token` used up `owed` of the caller's balance (a fee the token
    ///         charged the vault on top), more than the caller's `balance`: ask for amount * balance / owed.
    error VaultWithdrawFeeAboveBalance(address token, uint256 amount, uint256 owed, uint256 balance);
    /// @notice A bounty of `bountyBps` of a swap's output was asked for, above the bound `maxBps`.
    error VaultBountyAboveMax(uint256 bountyBps, uint256 maxBps);
    /// @notice The vault holds `held` of `token`, less than the `accounted` total it owes (the token
    ///         shrank balances): deposits and swaps of it stop, withdrawals pay pro rata.
    error VaultTokenShortfall(address token, uint256 held, uint256 accounted);

    // ---------------------------------------------------------------- events
    /// @notice `user` deposited and was credited `amount` of `token` (what arrived).
    event Deposited(address indexed user, address indexed token, uint256 amount);
    /// @notice `user`'s balance of `token` went down by `amount`; the vault sent them `sent`
    ///         (less than `amount` only for a token in shortfall or one that charges the vault a fee).
    event Withdrawn(address indexed user, address indexed token, uint256 amount, uint256 sent);
    /// @notice `token` was added to (`allowed` true) or removed from the allow-list.
    event TokenAllowed(address indexed token, bool allowed);
    /// @notice The executor changed from `previousExecutor` to `newExecutor`.
    event ExecutorUpdated(address indexed previousExecutor, address indexed newExecutor);
    /// @notice `user` swapped `amountIn` of `tokenIn` for `amountOut` of `tokenOut` via `router`.
    event Swapped(
        address indexed user, address indexed tokenIn, address indexed tokenOut, address router, uint256 amountIn,
        uint256 amountOut
    );
    /// @notice `amount` of `token`, out of the output of `user`'s swap, moved to `payee`'s vault balance
    ///         (the bounty of a protective exit that a non-keeper executed).
    event BountyPaid(address indexed user, address indexed payee, address indexed token, uint256 amount);
    /// @notice `amount` of never-listed `token` (a stray transfer) was sent to `to`.
    event Swept(address indexed token, address indexed to, uint256 amount);

    // ------------------------------------------------------------- constants
    uint256 private constant MAX_BPS = 10_000;
    /// @notice Most of a swap's output that may go to someone other than the user: an exit's bounty.
    uint16 public constant MAX_BOUNTY_BPS = 500;

    // --------------------------------------------------------------- storage
    mapping(address user => mapping(address token => uint256)) private _balances;
    mapping(address token => uint256) private _accountedTotal;
    mapping(address token => bool) private _allowedTokens;
    EnumerableSet.AddressSet private _everListed; // a delisted token may still hold balances
    address private _executor;

    // ----------------------------------------------------------- constructor
    /// @param manager The AccessManager that decides who may call the restricted functions.
    constructor(address manager) SentinelManaged(manager) {}

    // ------------------------------------------------------- external writes
    /// @notice Deposits `amount` of `token` from the caller into the caller's balance.
    /// @dev Credits the measured balance increase, so fee-on-transfer tokens are
    ///      credited what actually arrived. Order: pull, measure, credit, event.
    /// @param token An allow-listed ERC-20 token.
    /// @param amount Amount to pull from the caller (needs an allowance).
    /// @return credited Amount added to the caller's balance.
    function deposit(address token, uint256 amount) external whenNotPaused nonReentrant returns (uint256 credited) {
        if (!_allowedTokens[token]) revert VaultTokenNotAllowed(token);
        if (amount == 0) revert VaultZeroAmount();

        uint256 balanceBefore = IERC20(token).balanceOf(address(this));
        _checkCovered(token, balanceBefore);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        credited = IERC20(token).balanceOf(address(this)) - balanceBefore;
        // slither-disable-next-line incorrect-equality
        if (credited == 0) revert VaultZeroAmount();

        _balances[msg.sender][token] += credited;
        _accountedTotal[token] += credited;
        emit Deposited(msg.sender, token, credited);
    }

    /// @notice Withdraws `amount` of the caller's balance of `token` to the caller.
    /// @dev Works while paused and for tokens removed from the allow-list: a user can
    ///      always leave. A token in shortfall pays `amount` * held / accounted (rounded
    ///      down): every holder bears the same share of it, whoever leaves first. A token
    ///      that takes more out of the vault than it sends (a fee charged to the sender on
    ///      top) debits that fee from the caller's own balance too, at the same rate, so no
    ///      other holder pays it; what arrives is what the caller gets. Order: measure,
    ///      debit, send, measure what left, debit a fee, event.
    /// @param token The token to withdraw.
    /// @param amount Amount of the caller's balance to withdraw, at most that balance.
    /// @return sent Amount the vault sent (what arrives may be less for a token that burns on transfer).
    function withdraw(address token, uint256 amount) external nonReentrant returns (uint256 sent) {
        if (amount == 0) revert VaultZeroAmount();
        uint256 held = IERC20(token).balanceOf(address(this));
        uint256 accounted = _accountedTotal[token];
        bool shortfall = held < accounted;
        _debit(msg.sender, token, amount);
        sent = shortfall ? Math.mulDiv(amount, held, accounted) : amount;
        if (sent != 0) IERC20(token).safeTransfer(msg.sender, sent);
        // slither-disable-next-line reentrancy-balance
        uint256 left = held - IERC20(token).balanceOf(address(this));
        uint256 debited = amount;
        if (left > sent) {
            // In balance units: what left, scaled back by accounted/held in a shortfall.
            uint256 owed = shortfall ? Math.mulDiv(left, accounted, held, Math.Rounding.Ceil) : left;
            uint256 balance = _balances[msg.sender][token];
            if (owed - amount > balance) revert VaultWithdrawFeeAboveBalance(token, amount, owed, amount + balance);
            _debit(msg.sender, token, owed - amount);
            debited = owed;
        }
        emit Withdrawn(msg.sender, token, debited, sent);
    }

    /// @notice Swaps `amountIn` of `user`'s `tokenIn` for `tokenOut` through `router`
    ///         and credits the output to the same user.
    /// @dev Executor only; the executor checks keepers, user limits, router allow-list
    ///      and the oracle floor. The vault guarantees the custody side: the output goes
    ///      to the vault (never elsewhere), only the measured increase is credited, and
    ///      the router's allowance is exactly `amountIn` and back to zero afterwards.
    /// @param user Whose balance is swapped.
    /// @param tokenIn Token sold, debited from `user`.
    /// @param tokenOut Token bought, credited to `user`.
    /// @param amountIn Amount of `tokenIn` to sell.
    /// @param minAmountOut Least amount of `tokenOut` to accept.
    /// @param router A Uniswap-V2-compatible router.
    /// @param deadline Unix time after which the router rejects the swap.
    /// @return amountOut Amount of `tokenOut` credited to `user`.
    function swap(
        address user,
        address tokenIn,
        address tokenOut,
        uint256 amountIn,
        uint256 minAmountOut,
        address router,
        uint256 deadline
    ) external whenNotPaused nonReentrant returns (uint256 amountOut) {
        if (msg.sender != _executor) revert VaultUnauthorizedExecutor(msg.sender);
        return _swap(user, tokenIn, tokenOut, amountIn, minAmountOut, router, deadline);
    }

    /// @notice `swap`, then moves `bountyBps` of the output (rounded down) from `user`'s balance of
    ///         `tokenOut` to `payee`'s: the bounty of a protective exit executed by a non-keeper.
    /// @dev Executor only. The one way a balance moves to another account, bounded here, whatever
    ///      the executor asks: at most MAX_BOUNTY_BPS of this swap's measured output, credited in
    ///      the vault (no transfer: the accounted total is unchanged; the payee withdraws it).
    /// @param user Whose balance is swapped.
    /// @param tokenIn Token sold, debited from `user`.
    /// @param tokenOut Token bought, credited to `user` less the bounty.
    /// @param amountIn Amount of `tokenIn` to sell.
    /// @param minAmountOut Least amount of `tokenOut` the swap must deliver (before the bounty).
    /// @param router A Uniswap-V2-compatible router.
    /// @param deadline Unix time after which the router rejects the swap.
    /// @param payee Who is credited the bounty.
    /// @param bountyBps The bounty in bps of the output, at most MAX_BOUNTY_BPS.
    /// @return amountOut The swap's whole output.
    /// @return bounty The part of it credited to `payee`.
    function swapPayingBounty(
        address user,
        address tokenIn,
        address tokenOut,
        uint256 amountIn,
        uint256 minAmountOut,
        address router,
        uint256 deadline,
        address payee,
        uint16 bountyBps
    ) external whenNotPaused nonReentrant returns (uint256 amountOut, uint256 bounty) {
        if (msg.sender != _executor) revert VaultUnauthorizedExecutor(msg.sender);
        if (payee == address(0)) revert VaultZeroAddress();
        if (bountyBps > MAX_BOUNTY_BPS) revert VaultBountyAboveMax(bountyBps, MAX_BOUNTY_BPS);
        amountOut = _swap(user, tokenIn, tokenOut, amountIn, minAmountOut, router, deadline);
        bounty = amountOut * bountyBps / MAX_BPS;
        // Within the vault: the accounted total stays; the user was just credited amountOut >= bounty.
        _balances[user][tokenOut] -= bounty;
        _balances[payee][tokenOut] += bounty;
        emit BountyPaid(user, payee, tokenOut, bounty);
    }

    /// @notice Allows deposits and swaps of `token` (a delayed power: it lets value in).
    /// @param token The ERC-20 token.
    function listToken(address token) external restricted {
        if (token == address(0)) revert VaultZeroAddress();
        _allowedTokens[token] = true;
        // Listing a token again leaves the set as it is: its `false` needs no handling.
        // slither-disable-next-line unused-return
        _everListed.add(token);
        emit TokenAllowed(token, true);
    }

    /// @notice Stops deposits and swaps of `token` at once; withdrawals still work.
    /// @param token The ERC-20 token.
    function delistToken(address token) external restricted {
        _allowedTokens[token] = false;
        emit TokenAllowed(token, false);
    }

    /// @notice Sets the only contract allowed to swap user balances (a delayed power).
    /// @param newExecutor The Executor contract; zero disables swaps.
    // slither-disable-next-line missing-zero-check
    function setExecutor(address newExecutor) external restricted {
        emit ExecutorUpdated(_executor, newExecutor);
        _executor = newExecutor;
    }

    /// @notice Sends a token that was never listed (a stray transfer) to `to`.
    /// @dev Refuses every token ever listed, whatever its `balanceOf` says, and reverts if
    ///      any listed token no longer covers its accounted total afterwards (a second
    ///      address of a listed token moves the same balance).
    /// @param token The token to sweep.
    /// @param to Recipient.
    /// @param amount Amount to send, at most the vault's balance of `token`.
    function sweep(address token, address to, uint256 amount) external restricted nonReentrant {
        if (to == address(0)) revert VaultZeroAddress();
        if (_everListed.contains(token)) revert VaultSweepListedToken(token);
        uint256 available = surplus(token);
        if (amount == 0) revert VaultZeroAmount();
        if (amount > available) revert VaultSweepExceedsSurplus(token, available, amount);
        IERC20(token).safeTransfer(to, amount);
        address[] memory listed = _everListed.values();
        for (uint256 i; i < listed.length; ++i) {
            // slither-disable-next-line calls-loop
            uint256 held = IERC20(listed[i]).balanceOf(address(this));
            uint256 accounted = _accountedTotal[listed[i]];
            if (held < accounted) revert VaultSweepUncoversListedToken(listed[i], held, accounted);
        }
        emit Swept(token, to, amount);
    }

    /// @notice Stops deposits and swaps at once (the kill switch); withdrawals stay open.
    function pause() external restricted {
        _pause();
    }

    /// @notice Lets deposits and swaps resume.
    function unpause() external restricted {
        _unpause();
    }

    // ------------------------------------------------------------------ views
    /// @notice `user`'s balance of `token` in the vault.
    /// @param user The account.
    /// @param token The token.
    /// @return The balance.
    function balanceOf(address user, address token) external view returns (uint256) {
        return _balances[user][token];
    }

    /// @notice Sum of all users' balances of `token`.
    /// @param token The token.
    /// @return The accounted total.
    function accountedTotal(address token) external view returns (uint256) {
        return _accountedTotal[token];
    }

    /// @notice Tokens the vault holds that belong to no user (donations).
    /// @param token The token.
    /// @return Real balance minus the accounted total, or zero if the real balance is smaller.
    function surplus(address token) public view returns (uint256) {
        uint256 held = IERC20(token).balanceOf(address(this));
        uint256 accounted = _accountedTotal[token];
        // A token that shrinks balances (rebasing down) can leave less than is owed:
        // then nothing is surplus.
        return held > accounted ? held - accounted : 0;
    }

    /// @notice Whether `token` may be deposited and swapped.
    /// @param token The token.
    /// @return True when allow-listed.
    function isTokenAllowed(address token) external view returns (bool) {
        return _allowedTokens[token];
    }

    /// @notice Every token ever listed (a delisted one may still hold user balances).
    /// @return The token addresses.
    function everListedTokens() external view returns (address[] memory) {
        return _everListed.values();
    }

    /// @notice The only contract allowed to swap user balances.
    /// @return The executor address.
    function executor() external view returns (address) {
        return _executor;
    }

    // --------------------------------------------------------------- internal
    /// @dev The swap itself (the caller checked the executor): debit, swap to the vault, credit the measured
    ///      output to `user`, return the unspent input. Order explained inline.
    function _swap(
        address user,
        address tokenIn,
        address tokenOut,
        uint256 amountIn,
        uint256 minAmountOut,
        address router,
        uint256 deadline
    ) private returns (uint256 amountOut) {
        if (tokenIn == tokenOut) revert VaultSameToken(tokenIn);
        if (!_allowedTokens[tokenIn]) revert VaultTokenNotAllowed(tokenIn);
        if (!_allowedTokens[tokenOut]) revert VaultTokenNotAllowed(tokenOut);
        if (amountIn == 0) revert VaultZeroAmount();

        uint256 inBefore = IERC20(tokenIn).balanceOf(address(this));
        uint256 outBefore = IERC20(tokenOut).balanceOf(address(this));
        // Selling a token in shortfall would take other holders' share; buying one would
        // credit the output at a full unit per unit, diluted by it.
        _checkCovered(tokenIn, inBefore);
        _checkCovered(tokenOut, outBefore);
        _debit(user, tokenIn, amountIn);
        IERC20(tokenIn).forceApprove(router, amountIn);
        address[] memory path = new address[](2);
        path[0] = tokenIn;
        path[1] = tokenOut;
        // The fee-on-transfer-supporting variant measures what `to` received, so it
        // works for plain and fee-charging tokens alike. The output can only be known
        // after this call, so crediting follows it; nonReentrant guards every entry.
        // slither-disable-next-line reentrancy-no-eth,reentrancy-balance
        IUniswapV2Router02(router).swapExactTokensForTokensSupportingFeeOnTransferTokens(
            amountIn, minAmountOut, path, address(this), deadline
        );
        IERC20(tokenIn).forceApprove(router, 0);
        amountOut = IERC20(tokenOut).balanceOf(address(this)) - outBefore;
        // slither-disable-next-line incorrect-equality,reentrancy-balance
        if (amountOut < minAmountOut || amountOut == 0) revert VaultInsufficientOutput(amountOut, minAmountOut);

        // The allowance caps what the router can take at amountIn; a router that took
        // less must not cost the user the difference.
        uint256 unspent = amountIn - (inBefore - IERC20(tokenIn).balanceOf(address(this)));
        amountIn -= unspent;
        _balances[user][tokenIn] += unspent;
        _accountedTotal[tokenIn] += unspent;
        _balances[user][tokenOut] += amountOut;
        _accountedTotal[tokenOut] += amountOut;
        emit Swapped(user, tokenIn, tokenOut, router, amountIn, amountOut);
    }

    function _checkCovered(address token, uint256 held) private view {
        uint256 accounted = _accountedTotal[token];
        if (held < accounted) revert VaultTokenShortfall(token, held, accounted);
    }

    function _debit(address user, address token, uint256 amount) private {
        uint256 balance = _balances[user][token];
        if (balance < amount) revert VaultInsufficientBalance(user, token, balance, amount);
        unchecked {
            // Cannot underflow: checked above, and every balance is part of the total.
            _balances[user][token] = balance - amount;
            _accountedTotal[token] -= amount;
        }
    }
}
