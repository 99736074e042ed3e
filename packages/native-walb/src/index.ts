/**
 * `@walbjs/native-walb`: control of walb devices, kernel and userspace.
 *
 * This first slice is the kernel driver's userspace ABI as pure TypeScript (walb-driver 1.5 on
 * Linux x86_64 / arm64): no device is opened. The Rust Node-API addon that issues the ioctls and
 * the userspace capture device come next (see the package README).
 *
 * - ioctl numbers: {@link ioc}, {@link ior}, {@link iow}, {@link iowr}, {@link decodeIoctl};
 *   {@link WALB_IOCTL_VERSION}, {@link WALB_IOCTL_CONTROL}, {@link WALB_IOCTL_WDEV}.
 * - Commands: {@link WalbCtlCommand}, {@link WALB_CTL_COMMANDS}, {@link walbCtlRequest}.
 * - Structs: {@link WALB_CTL_LAYOUT} and friends; {@link encodeWalbCtl} / {@link decodeWalbCtl},
 *   {@link encodeStartParam} / {@link decodeStartParam}, {@link decodeWalbDiskDataList}.
 * - Start parameters: {@link DEFAULT_START_PARAM}, {@link makeStartParam},
 *   {@link validateStartParam}; device names: {@link validateWdevName}.
 * - Paths and sysfs: {@link wdevPath}, {@link sysfsAttributePath}, {@link parseLsids},
 *   {@link formatLsids}, {@link checkLsidOrder}, {@link parseDevNumber}, {@link parseSysfsUuid}.
 * - Errors: {@link WalbAbiError} and its subclasses.
 *
 * @example
 * import { makeWalbCtl, encodeWalbCtl, walbCtlRequest, WalbCtlCommand } from '@walbjs/native-walb';
 * const ctl = makeWalbCtl(WalbCtlCommand.GET_OLDEST_LSID);
 * const bytes = encodeWalbCtl(ctl);                  // 120 bytes for ioctl(fd, request, bytes)
 * const request = walbCtlRequest(ctl.command);       // 0xC078FE02 (WALB_IOCTL_WDEV)
 *
 * @packageDocumentation
 */
export * from './errors.ts';
export * from './kernel-abi.ts';
export * from './sysfs.ts';
export { loadNative, nativeCandidates, nativeFileName, type NativeAddon } from './native.ts';
export * from './kernel.ts';
export * from './capture.ts';
