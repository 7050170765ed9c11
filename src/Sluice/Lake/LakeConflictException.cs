using Sluice.Core;

namespace Sluice.Lake;

/// <summary>A commit that replaces specific files found one of them already replaced (two compactions raced): it changed nothing.</summary>
public sealed class LakeConflictException : SluiceException
{
    public LakeConflictException(string message) : base(message) { }

    public LakeConflictException() { }

    public LakeConflictException(string message, Exception inner) : base(message, inner) { }
}
