import { describe, it, expect } from 'vitest';
import { formatIpv4Address, inSubnet, IPV4_BROADCAST, parseIpv4Address, prefixMask } from '../src/wire/address.js';

describe('IPv4 addresses', () => {
  it('parses dotted quads to u32 and back', () => {
    expect(parseIpv4Address('192.168.0.1')).toBe(0xc0a80001);
    expect(parseIpv4Address('255.255.255.255')).toBe(IPV4_BROADCAST);
    expect(parseIpv4Address('0.0.0.0')).toBe(0);
    expect(formatIpv4Address(0xc0a800c7)).toBe('192.168.0.199');
    expect(formatIpv4Address(0xffffffff)).toBe('255.255.255.255');
  });

  it.each(['1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-4', '1.2.3.x', '', '1..2.3'])('rejects %j', (text) => {
    expect(() => parseIpv4Address(text)).toThrow(RangeError);
  });

  it('computes prefix masks', () => {
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(8)).toBe(0xff000000);
    expect(prefixMask(24)).toBe(0xffffff00);
    expect(prefixMask(32)).toBe(0xffffffff);
  });

  it('tests subnet membership', () => {
    const net = parseIpv4Address('10.1.0.0');
    expect(inSubnet(parseIpv4Address('10.1.255.7'), net, 16)).toBe(true);
    expect(inSubnet(parseIpv4Address('10.2.0.1'), net, 16)).toBe(false);
    expect(inSubnet(parseIpv4Address('203.0.113.9'), 0, 0)).toBe(true);
    expect(inSubnet(0xc0000001, 0xc0000001, 32)).toBe(true);
  });
});
