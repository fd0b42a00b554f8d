using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TunnelMesh.Net.Wire;

namespace TunnelMesh.Net.Tests.Wire;

public class TcpSegmentTests
{
    // Real IPv4 + TCP packets sent by the Linux kernel (6.18, default sysctls: timestamps, SACK and
    // window scaling on) over loopback inside a network namespace made for the capture: a Python
    // AF_PACKET socket bound to `lo` recorded the outgoing packets while a client connected to
    // 127.0.0.1:9 (closed: SYN, RST) and to a listener on 127.0.0.1:5001 (handshake, "hello tcp",
    // "ok", FINs). Loopback uses checksum offload, so the segments the kernel built itself carry
    // only the folded pseudo-header sum in the checksum field (CHECKSUM_PARTIAL); the RST, built by
    // ip_send_unicast_reply, carries a full checksum.
    private const string LinuxSynToClosedPort =
        "4500003cf2db4000400649de7f0000017f00000199be00093815980d00000000a002ffd7fe3000000204ffd70402080ae1583bd1000000000103030a";

    private const string LinuxRstFromClosedPort =
        "450000280000400040063cce7f0000017f000001000999be000000003815980e5014000047e30000";

    private const string LinuxSyn =
        "4500003ccbb74000400671027f0000017f000001b84e1389493fecbf00000000a002ffd7fe3000000204ffd70402080a1d2b6b10000000000103030a";

    private const string LinuxSynAck =
        "4500003c0000400040063cba7f0000017f0000011389b84e2e0680fb493fecc0a012ffcbfe3000000204ffd70402080a8722ca681d2b6b100103030a";

    private const string LinuxData =
        "4500003dcbb94000400670ff7f0000017f000001b84e1389493fecc02e0680fc80180040fe3100000101080a1d2b6b118722ca6868656c6c6f20746370";

    private const string LinuxFinAck =
        "45000034cbbb4000400671067f0000017f000001b84e1389493fecc92e0680fe80110040fe2800000101080a1d2b6b118722ca69";

    private static readonly string[] LinuxFixtures = [LinuxSynToClosedPort, LinuxRstFromClosedPort, LinuxSyn, LinuxSynAck, LinuxData, LinuxFinAck];

    [Fact]
    public void Linux_syn_parses_field_by_field()
    {
        var (tcp, source, destination) = Unwrap(LinuxSynToClosedPort);
        Assert.True(TcpSegment.TryCreate(tcp, out var segment));
        Assert.Equal(39358, segment.SourcePort);
        Assert.Equal(9, segment.DestinationPort);
        Assert.Equal(0x3815980Du, segment.SequenceNumber);
        Assert.Equal(0u, segment.AcknowledgmentNumber);
        Assert.Equal(40, segment.HeaderLength);
        Assert.Equal(TcpFlags.Syn, segment.Flags);
        Assert.Equal(65495, segment.Window);
        Assert.Equal(0, segment.UrgentPointer);
        Assert.Equal(20, segment.OptionBytes.Length);
        Assert.Equal(0, segment.Payload.Length);
        Assert.Equal(1, segment.SequenceLength);

        Assert.True(segment.TryParseOptions(out var options));
        Assert.Equal(65495, options.MaxSegmentSize);
        Assert.True(options.SackPermitted);
        Assert.True(options.HasTimestamps);
        Assert.Equal(0xE1583BD1u, options.TimestampValue);
        Assert.Equal(0u, options.TimestampEcho);
        Assert.Equal(10, options.WindowScale);
        Assert.Equal(0, options.SackBlockCount);

        // Checksum offload: the field holds the folded pseudo-header sum, not a valid checksum.
        Assert.Equal(InternetChecksum.Fold(InternetChecksum.PseudoHeaderIpv4(source, destination, IpProtocol.Tcp, (ushort)tcp.Length)), segment.Checksum);
        Assert.False(segment.VerifyChecksumIpv4(source, destination));
        TcpSegment.FillChecksumIpv4(tcp, source, destination);
        Assert.True(segment.VerifyChecksumIpv4(source, destination));
    }

    [Fact]
    public void Linux_rst_carries_a_valid_checksum()
    {
        var (tcp, source, destination) = Unwrap(LinuxRstFromClosedPort);
        Assert.True(TcpSegment.TryCreate(tcp, out var segment));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, segment.Flags);
        Assert.Equal(0x3815980Eu, segment.AcknowledgmentNumber);
        Assert.Equal(0, segment.OptionBytes.Length);
        Assert.True(segment.TryParseOptions(out var options));
        Assert.Equal(TcpOptions.None, options);
        Assert.True(segment.VerifyChecksumIpv4(source, destination));
        Assert.False(segment.VerifyChecksumIpv4(source + 1, destination));

        // Recomputing gives back exactly what Linux wrote.
        ushort linux = segment.Checksum;
        TcpSegment.FillChecksumIpv4(tcp, source, destination);
        Assert.Equal(linux, segment.Checksum);
    }

    [Fact]
    public void Linux_data_segment_has_nop_nop_timestamps_and_payload()
    {
        var (tcp, _, _) = Unwrap(LinuxData);
        Assert.True(TcpSegment.TryCreate(tcp, out var segment));
        Assert.Equal(TcpFlags.Psh | TcpFlags.Ack, segment.Flags);
        Assert.Equal(32, segment.HeaderLength);
        Assert.Equal("hello tcp"u8.ToArray(), segment.Payload.ToArray());
        Assert.Equal(9, segment.SequenceLength);
        Assert.True(segment.TryParseOptions(out var options));
        var expected = TcpOptions.None;
        expected.HasTimestamps = true;
        expected.TimestampValue = 0x1D2B6B11;
        expected.TimestampEcho = 0x8722CA68;
        Assert.Equal(expected, options);
    }

    [Fact]
    public void Emit_reproduces_the_linux_layout_byte_for_byte()
    {
        foreach (string hex in LinuxFixtures)
        {
            var (tcp, _, _) = Unwrap(hex);
            Assert.True(TcpSegment.TryCreate(tcp, out var segment));
            Assert.True(segment.TryParseOptions(out var options));
            var header = TcpHeader.Parse(segment);

            var emitted = new byte[TcpSegment.MaxHeaderLength];
            int length = header.Emit(emitted, options);
            Assert.Equal(segment.HeaderLength, length);
            Assert.Equal(length, TcpHeader.GetHeaderLength(options));

            var expected = tcp[..length].ToArray();
            expected[16] = expected[17] = 0; // Emit leaves the checksum to FillChecksumIpv4.
            Assert.Equal(WireGen.Hex(expected), WireGen.Hex(emitted.AsSpan(0, length)));
        }
    }

    [Property]
    public Property Parse_of_emit_is_identity_with_random_options_and_payloads()
    {
        var gen = from header in HeaderGen
                  from options in OptionsGen
                  from payload in WireGen.Bytes(200)
                  from addresses in Gen.Two(WireGen.UInt)
                  select (header, options, payload, addresses);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (header, options, payload, (source, destination)) = t;
            int headerLength = TcpHeader.GetHeaderLength(options);
            var buffer = new byte[headerLength + payload.Length];
            payload.CopyTo(buffer, headerLength);
            int written = header.Emit(buffer, options);
            TcpSegment.FillChecksumIpv4(buffer, source, destination);

            var expectedOptions = options;
            expectedOptions.SetSackBlocks(options.SackBlocks[..ExpectedSackBlocks(options)]);
            return written == headerLength
                && headerLength % 4 == 0
                && headerLength <= TcpSegment.MaxHeaderLength
                && TcpSegment.TryCreate(buffer, out var segment)
                && segment.HeaderLength == headerLength
                && TcpHeader.Parse(segment) == header
                && segment.UrgentPointer == 0
                && segment.TryParseOptions(out var parsed)
                && parsed == expectedOptions
                && segment.Payload.SequenceEqual(payload)
                && segment.VerifyChecksumIpv4(source, destination);
        });
    }

    [Property]
    public Property Fill_checksum_matches_the_reference_and_any_flipped_bit_is_detected()
    {
        var gen = from header in HeaderGen
                  from options in OptionsGen
                  from payload in WireGen.Bytes(300)
                  from addresses in Gen.Two(WireGen.UInt)
                  from flip in Gen.Choose(0, int.MaxValue)
                  select (header, options, payload, addresses, flip);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (header, options, payload, (source, destination), flip) = t;
            int headerLength = TcpHeader.GetHeaderLength(options);
            var buffer = new byte[headerLength + payload.Length];
            payload.CopyTo(buffer, headerLength);
            header.Emit(buffer, options);
            TcpSegment.FillChecksumIpv4(buffer, source, destination);

            // Reference: pseudo-header + segment with the checksum field zeroed, summed the plain way.
            var pseudo = new byte[12 + buffer.Length];
            BinaryPrimitives.WriteUInt32BigEndian(pseudo, source);
            BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(4), destination);
            pseudo[9] = IpProtocol.Tcp;
            BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)buffer.Length);
            buffer.CopyTo(pseudo, 12);
            pseudo[12 + 16] = pseudo[12 + 17] = 0;
            bool matches = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(16)) == WireGen.ReferenceChecksum(pseudo);

            // A single flipped bit changes the one's complement sum by +-2^k, never by a multiple of 0xFFFF.
            int bit = flip % (buffer.Length * 8);
            buffer[bit / 8] ^= (byte)(1 << (bit % 8));
            TcpSegment.TryCreate(buffer, out var corrupted);
            return matches && !corrupted.VerifyChecksumIpv4(source, destination);
        });
    }

    [Fact]
    public void Wrong_pseudo_header_fails_verification()
    {
        var buffer = new byte[24];
        new TcpHeader(1000, 2000, 1, 2, TcpFlags.Ack, 512).Emit(buffer, TcpOptions.None);
        TcpSegment.FillChecksumIpv4(buffer, 0x64400001, 0x64400002);
        Assert.True(TcpSegment.TryCreate(buffer, out var segment));
        Assert.True(segment.VerifyChecksumIpv4(0x64400001, 0x64400002));
        Assert.False(segment.VerifyChecksumIpv4(0x64400002, 0x64400003));
        Assert.False(TcpSegment.TryCreate(buffer.AsSpan(0, 23), out var shorter) && shorter.VerifyChecksumIpv4(0x64400001, 0x64400002));
    }

    [Fact]
    public void Sack_blocks_are_cut_to_fit_sixty_bytes()
    {
        SackBlock[] blocks = [new(1, 2), new(3, 4), new(5, 6), new(7, 8)];
        var options = TcpOptions.None;
        options.SetSackBlocks(blocks);
        Assert.Equal(20 + 36, TcpHeader.GetHeaderLength(options)); // NOP NOP SACK(34)

        options.HasTimestamps = true;
        Assert.Equal(20 + 12 + 28, TcpHeader.GetHeaderLength(options)); // 3 blocks with timestamps
        var buffer = new byte[60];
        new TcpHeader(1, 2, 3, 4, TcpFlags.Ack, 5).Emit(buffer, options);
        Assert.True(TcpSegment.TryCreate(buffer, out var segment));
        Assert.True(segment.TryParseOptions(out var parsed));
        Assert.Equal(blocks[..3], parsed.SackBlocks.ToArray());

        options.MaxSegmentSize = 1460;
        options.WindowScale = 7;
        options.SackPermitted = true;
        Assert.Equal(60, TcpHeader.GetHeaderLength(options)); // MSS SACKOK TS NOP WS + 2 blocks
        new TcpHeader(1, 2, 3, 4, TcpFlags.Ack, 5).Emit(buffer, options);
        Assert.True(TcpSegment.TryCreate(buffer, out segment));
        Assert.True(segment.TryParseOptions(out parsed));
        Assert.Equal(blocks[..2], parsed.SackBlocks.ToArray());
    }

    [Fact]
    public void Emit_refuses_a_span_shorter_than_the_header()
    {
        var options = TcpOptions.None;
        options.HasTimestamps = true;
        Assert.Throws<ArgumentException>(() => new TcpHeader(1, 2, 3, 4, TcpFlags.Ack, 5).Emit(new byte[31], options));
        Assert.Equal(32, new TcpHeader(1, 2, 3, 4, TcpFlags.Ack, 5).Emit(new byte[32], options));
        Assert.Throws<ArgumentException>(() => TcpSegment.FillChecksumIpv4(new byte[19], 1, 2));
    }

    [Fact]
    public void Data_offset_is_checked_against_the_buffer()
    {
        var buffer = new byte[40];
        buffer[12] = 0x50;
        Assert.True(TcpSegment.TryCreate(buffer, out var segment));
        Assert.Equal(20, segment.Payload.Length);

        buffer[12] = 0xA0; // 40 bytes: exactly the buffer
        Assert.True(TcpSegment.TryCreate(buffer, out segment));
        Assert.Equal(0, segment.Payload.Length);

        buffer[12] = 0xB0; // 44 bytes: past the end
        Assert.False(TcpSegment.TryCreate(buffer, out _));
        buffer[12] = 0x40; // 16 bytes: below the fixed header
        Assert.False(TcpSegment.TryCreate(buffer, out _));
        buffer[12] = 0x00;
        Assert.False(TcpSegment.TryCreate(buffer, out _));
        buffer[12] = 0x50;
        Assert.False(TcpSegment.TryCreate(buffer.AsSpan(0, 19), out _));
    }

    [Theory]
    [InlineData("02")]                      // MSS kind without a length byte
    [InlineData("020405")]                  // MSS running past the end
    [InlineData("2200")]                    // unknown kind, length 0
    [InlineData("2201")]                    // unknown kind, length 1
    [InlineData("220801020304")]            // unknown kind running past the end
    [InlineData("020305")]                  // MSS with length 3
    [InlineData("0205050000")]              // MSS with length 5
    [InlineData("03040700")]                // window scale with length 4
    [InlineData("0302")]                    // window scale with length 2
    [InlineData("040300")]                  // SACK-permitted with length 3
    [InlineData("080800000001000000")]      // timestamps with length 8 (one byte short of 9 too)
    [InlineData("080b0000000100000002ff")]  // timestamps with length 11
    [InlineData("0101050200")]              // SACK with no block
    [InlineData("01010509000000010000000200")] // SACK with length 9
    [InlineData("0101050b00000001000000020000")] // SACK with length 11
    [InlineData("010101")]                  // fine so far ...
    public void Malformed_options_are_rejected(string hex)
    {
        var bytes = WireGen.FromHex(hex);
        bool expected = hex == "010101"; // ... NOPs alone are well formed (the control case)
        Assert.Equal(expected, TcpOptions.TryParse(bytes, out _));
    }

    [Fact]
    public void Malformed_options_in_a_segment_are_rejected()
    {
        // Option bytes reach the parser through the data offset, EOL-padded to a whole word.
        Assert.False(SegmentWithOptions("020305").TryParseOptions(out _));    // MSS with length 3
        Assert.False(SegmentWithOptions("0101080a0000").TryParseOptions(out _)); // timestamps cut by the data offset
        Assert.True(SegmentWithOptions("020405b4").TryParseOptions(out var options));
        Assert.Equal(1460, options.MaxSegmentSize);
    }

    [Fact]
    public void Unknown_kinds_are_skipped_end_of_list_stops_and_window_scale_is_clamped()
    {
        // Unknown kind 30 (MPTCP) of length 4, then MSS 1460, then window scale 15 (clamped).
        Assert.True(TcpOptions.TryParse(WireGen.FromHex("1e04abcd 020405b4 01 03030f"), out var options));
        Assert.Equal(1460, options.MaxSegmentSize);
        Assert.Equal(14, options.WindowScale);
        Assert.False(options.HasTimestamps);

        // After end-of-list nothing is read, not even a malformed option.
        Assert.True(TcpOptions.TryParse(WireGen.FromHex("020405b4 00 0205ffffff"), out options));
        Assert.Equal(1460, options.MaxSegmentSize);

        // An MSS of 0 reads as absent; an empty option list is "none".
        Assert.True(TcpOptions.TryParse(WireGen.FromHex("02040000"), out options));
        Assert.Equal(TcpOptions.None, options);
        Assert.True(TcpOptions.TryParse([], out options));
        Assert.Equal(-1, options.WindowScale);
    }

    [Fact]
    public void Sack_blocks_parse_from_a_hand_built_linux_style_ack()
    {
        // Linux puts SACK blocks after NOP NOP timestamps, each option block NOP-padded to 4 bytes.
        var options = WireGen.FromHex("0101080a 00000064 000000c8 0101 0512 0000100000001100 0000200000002200");
        Assert.True(TcpOptions.TryParse(options, out var parsed));
        Assert.True(parsed.HasTimestamps);
        Assert.Equal(100u, parsed.TimestampValue);
        Assert.Equal(200u, parsed.TimestampEcho);
        Assert.Equal(2, parsed.SackBlockCount);
        Assert.Equal(new SackBlock(0x1000, 0x1100), parsed.GetSackBlock(0));
        Assert.Equal(new SackBlock(0x2000, 0x2200), parsed.GetSackBlock(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => parsed.GetSackBlock(2));
    }

    [Property]
    public Property Random_bytes_never_throw()
    {
        return Prop.ForAll(WireGen.Bytes(80).ToArbitrary(), data =>
        {
            if (!TcpSegment.TryCreate(data, out var segment))
            {
                return data.Length < 20 || (data[12] >> 4) * 4 > data.Length || data[12] >> 4 < 5;
            }

            _ = segment.TryParseOptions(out var options);
            _ = segment.VerifyChecksumIpv4(1, 2);
            return segment.HeaderLength + segment.Payload.Length == data.Length
                && segment.OptionBytes.Length == segment.HeaderLength - 20
                && options.SackBlockCount is >= 0 and <= TcpOptions.MaxSackBlocks
                && options.WindowScale is >= -1 and <= TcpOptions.MaxWindowScale;
        });
    }

    [Property]
    public Property Random_option_bytes_never_throw_and_keep_invariants()
    {
        return Prop.ForAll(WireGen.Bytes(40).ToArbitrary(), data =>
        {
            _ = TcpOptions.TryParse(data, out var options);
            return options.SackBlockCount is >= 0 and <= TcpOptions.MaxSackBlocks
                && options.WindowScale is >= -1 and <= TcpOptions.MaxWindowScale;
        });
    }

    private static Gen<TcpHeader> HeaderGen { get; } =
        from ports in Gen.Two(WireGen.UShort)
        from numbers in Gen.Two(WireGen.UInt)
        from flags in WireGen.Byte
        from window in WireGen.UShort
        select new TcpHeader(ports.Item1, ports.Item2, numbers.Item1, numbers.Item2, (TcpFlags)flags, window);

    private static Gen<TcpOptions> OptionsGen { get; } =
        from mss in Gen.Frequency((1, Gen.Constant(0)), (2, Gen.Choose(1, 65535)))
        from scale in Gen.Frequency((1, Gen.Constant(-1)), (2, Gen.Choose(0, 14)))
        from sackPermitted in Gen.Elements(false, true)
        from timestamps in Gen.Elements(false, true)
        from tsValues in Gen.Two(WireGen.UInt)
        from blocks in Gen.Choose(0, 4).SelectMany(n => Gen.ArrayOf(Gen.Two(WireGen.UInt).Select(p => new SackBlock(p.Item1, p.Item2)), n))
        select Options(mss, scale, sackPermitted, timestamps, tsValues, blocks);

    private static TcpOptions Options(int mss, int scale, bool sackPermitted, bool timestamps, (uint, uint) tsValues, SackBlock[] blocks)
    {
        var options = TcpOptions.None;
        options.MaxSegmentSize = (ushort)mss;
        options.WindowScale = scale;
        options.SackPermitted = sackPermitted;
        if (timestamps)
        {
            options.HasTimestamps = true;
            (options.TimestampValue, options.TimestampEcho) = tsValues;
        }

        options.SetSackBlocks(blocks);
        return options;
    }

    /// <summary>How many SACK blocks fit, from the option sizes (RFC 9293, 7323, 2018) each padded to 4 bytes.</summary>
    private static int ExpectedSackBlocks(in TcpOptions options)
    {
        int raw = (options.MaxSegmentSize != 0 ? 4 : 0) + (options.HasTimestamps ? 10 : 0)
            + (options.WindowScale >= 0 ? 3 : 0) + (options.SackPermitted ? 2 : 0);
        int padded = (raw + 3) / 4 * 4;
        return Math.Min(options.SackBlockCount, (40 - padded - 4) / 8);
    }

    /// <summary>A 20-byte header followed by the options in <paramref name="hex"/> padded with EOL to a whole word, then 8 payload bytes.</summary>
    private static TcpSegment SegmentWithOptions(string hex)
    {
        var options = WireGen.FromHex(hex);
        int headerLength = 20 + (options.Length + 3) / 4 * 4;
        var buffer = new byte[headerLength + 8];
        buffer.AsSpan(headerLength).Fill(0x02); // payload bytes that would be a malformed option if read
        buffer[12] = (byte)(headerLength / 4 << 4);
        options.CopyTo(buffer, 20);
        Assert.True(TcpSegment.TryCreate(buffer, out var segment));
        return segment;
    }

    private static (byte[] Tcp, uint Source, uint Destination) Unwrap(string hex)
    {
        var packet = WireGen.FromHex(hex);
        Assert.True(Ipv4Packet.TryCreate(packet, out var ip));
        Assert.Equal(IpProtocol.Tcp, ip.Protocol);
        return (ip.Payload.ToArray(), ip.Source, ip.Destination);
    }
}
