// Placeholder until outbound/ has its first source file (removed then).
