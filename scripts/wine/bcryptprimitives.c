/* bcryptprimitives.dll for wine 8, which lacks it.
 *
 * Rust's std (1.78+) takes its randomness (HashMap seeds) from
 * bcryptprimitives!ProcessPrng, which Windows 10+ has and wine 8 does not:
 * without this DLL every Rust program dies at start-up under wine. This shim
 * exports ProcessPrng and forwards to BCryptGenRandom, which wine implements.
 * Built with mingw by scripts/wine-env into the private prefix's system32; it
 * never ships and never touches a real Windows machine.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
